import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  JsonStreamSplitter,
  OvsdbClient,
  OvsdbError,
  namedUuid,
  setOf,
  transactAndWait,
  waitCurCfg,
} from './ovsdb.js';

// The OVSDB client against a real ovsdb-server (Debian's, on the vswitch schema), with no
// ovs-vswitchd: the test itself plays the switch's part of the cur_cfg handshake, from a second
// connection. ovsdb-client, the server's own tool, is the independent reader.
let dir: string;
let server: ChildProcess;
let socket: string;

function ovsdbClient(...args: string[]): string {
  const r = spawnSync('ovsdb-client', [...args], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ovsdb-client ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'opdbus-net-ovsdb-'));
  socket = join(dir, 'db.sock');
  const db = join(dir, 'conf.db');
  spawnSync('ovsdb-tool', ['create', db, '/usr/share/openvswitch/vswitch.ovsschema']);
  server = spawn(
    'ovsdb-server',
    [db, `--remote=punix:${socket}`, `--unixctl=${join(dir, 'ctl')}`, '--no-chdir'],
    {
      stdio: 'ignore',
    },
  );
  const until = Date.now() + 10_000;
  while (!existsSync(socket)) {
    if (Date.now() > until) throw new Error('ovsdb-server did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  const c = await OvsdbClient.connect(socket);
  await c.transact('Open_vSwitch', [{ op: 'insert', table: 'Open_vSwitch', row: {} }]);
  c.close();
});

afterAll(async () => {
  if (server.exitCode === null) {
    const gone = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await gone;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('the JSON stream splitter', () => {
  it('splits concatenated values at any chunk boundary, minding strings, escapes and braces inside them', () => {
    const values = [
      { id: 1, result: ['a{b', 'c}d', '"quoted"', 'back\\slash\\', '[', ']'] },
      { method: 'update', params: ['m', { Bridge: { u: { new: { name: 'br}0' } } } }] },
      [1, [2, [3]], { x: '\\"}' }],
    ];
    const text = values.map((v) => JSON.stringify(v)).join('');
    fc.assert(
      fc.property(fc.array(fc.nat(text.length), { maxLength: 8 }), (cuts) => {
        const s = new JsonStreamSplitter();
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const out: string[] = [];
        let last = 0;
        for (const p of [...points, text.length]) {
          out.push(...s.push(text.slice(last, p)));
          last = p;
        }
        expect(out.map((t) => JSON.parse(t) as unknown)).toEqual(values);
      }),
    );
  });

  it('refuses what is not a stream of JSON objects', () => {
    expect(() => new JsonStreamSplitter().push('{}x{}')).toThrow(/unexpected "x"/);
    expect(() => new JsonStreamSplitter().push('}')).toThrow(/unbalanced/);
  });
});

describe('the OVSDB client against ovsdb-server', () => {
  it('lists databases and answers echo both ways', async () => {
    const c = await OvsdbClient.connect(socket);
    try {
      expect(await c.listDbs()).toContain('Open_vSwitch');
      expect(await c.echo(['ping', 1])).toEqual(['ping', 1]);
    } finally {
      c.close();
    }
  });

  it('commits a transaction another client reads back, and reports an error inside a result as a failed transaction', async () => {
    const c = await OvsdbClient.connect(socket);
    try {
      await c.transact('Open_vSwitch', [
        { op: 'insert', table: 'Interface', row: { name: 'tb0', type: 'internal' }, 'uuid-name': 'i' },
        { op: 'insert', table: 'Port', row: { name: 'tb0', interfaces: namedUuid('i') }, 'uuid-name': 'p' },
        { op: 'insert', table: 'Bridge', row: { name: 'tb0', ports: namedUuid('p') }, 'uuid-name': 'b' },
        {
          op: 'mutate',
          table: 'Open_vSwitch',
          where: [],
          mutations: [['bridges', 'insert', namedUuid('b')]],
        },
      ]);
      const dump = ovsdbClient('dump', `unix:${socket}`, 'Open_vSwitch', 'Bridge', 'name');
      expect(dump).toMatch(/tb0/);
      // the Bridge name index refuses a second tb0: the whole transaction is rolled back, Interface insert included
      const second = c.transact('Open_vSwitch', [
        { op: 'insert', table: 'Interface', row: { name: 'tb0x' }, 'uuid-name': 'i' },
        { op: 'insert', table: 'Port', row: { name: 'tb0x', interfaces: namedUuid('i') }, 'uuid-name': 'p' },
        { op: 'insert', table: 'Bridge', row: { name: 'tb0', ports: namedUuid('p') }, 'uuid-name': 'b' },
        {
          op: 'mutate',
          table: 'Open_vSwitch',
          where: [],
          mutations: [['bridges', 'insert', namedUuid('b')]],
        },
      ]);
      await expect(second).rejects.toThrow(/constraint violation/);
      expect(ovsdbClient('dump', `unix:${socket}`, 'Open_vSwitch', 'Interface', 'name')).not.toMatch(/tb0x/);
    } finally {
      c.close();
    }
  });

  it('fails a transaction whose wait condition does not hold, naming the operation', async () => {
    const c = await OvsdbClient.connect(socket);
    try {
      const r = c.transact('Open_vSwitch', [
        {
          op: 'wait',
          table: 'Bridge',
          where: [['name', '==', 'tb0']],
          columns: ['name'],
          until: '==',
          rows: [],
          timeout: 0,
        },
        { op: 'insert', table: 'Interface', row: { name: 'never' } },
      ]);
      await expect(r).rejects.toMatchObject({ kind: 'timed out' });
      await expect(r).rejects.toThrow(/operation 0 \(wait Bridge\)/);
      expect(ovsdbClient('dump', `unix:${socket}`, 'Open_vSwitch', 'Interface', 'name')).not.toMatch(/never/);
    } finally {
      c.close();
    }
  });

  it('streams monitor updates of a change made by another client (ovsdb-client transact)', async () => {
    const c = await OvsdbClient.connect(socket);
    try {
      const updates: Record<string, Record<string, unknown>>[] = [];
      const initial = await c.monitor('Open_vSwitch', 'm1', { Bridge: { columns: ['name'] } }, (u) =>
        updates.push(u),
      );
      expect(JSON.stringify(initial)).toMatch(/tb0/);
      ovsdbClient(
        'transact',
        `unix:${socket}`,
        JSON.stringify([
          'Open_vSwitch',
          {
            op: 'update',
            table: 'Bridge',
            where: [['name', '==', 'tb0']],
            row: { external_ids: ['map', [['k', 'v']]] },
          },
          { op: 'insert', table: 'Interface', row: { name: 'tbm' }, 'uuid-name': 'i' },
          { op: 'insert', table: 'Port', row: { name: 'tbm', interfaces: namedUuid('i') }, 'uuid-name': 'p' },
          { op: 'insert', table: 'Bridge', row: { name: 'tb1', ports: namedUuid('p') }, 'uuid-name': 'b' },
          {
            op: 'mutate',
            table: 'Open_vSwitch',
            where: [],
            mutations: [['bridges', 'insert', namedUuid('b')]],
          },
        ]),
      );
      const until = Date.now() + 5_000;
      while (!JSON.stringify(updates).includes('tb1') && Date.now() < until)
        await new Promise((r) => setTimeout(r, 20));
      expect(JSON.stringify(updates)).toMatch(/"new":\{"name":"tb1"\}/);
      await c.cancelMonitor('m1');
    } finally {
      c.close();
    }
  });

  it('waits for cur_cfg to reach next_cfg, as ovs-vswitchd reports it, and times out when nobody does', async () => {
    const c = await OvsdbClient.connect(socket);
    const sw = await OvsdbClient.connect(socket);
    try {
      // the "switch": copies next_cfg into cur_cfg 150 ms later
      const [before] = await c.transact('Open_vSwitch', [
        { op: 'select', table: 'Open_vSwitch', where: [], columns: ['next_cfg'] },
      ]);
      const next = ((before as { rows: { next_cfg: number }[] }).rows[0]?.next_cfg ?? 0) + 1;
      const started = Date.now();
      setTimeout(() => {
        void sw.transact('Open_vSwitch', [
          { op: 'update', table: 'Open_vSwitch', where: [], row: { cur_cfg: next } },
        ]);
      }, 150);
      await transactAndWait(c, [], 5_000);
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      await expect(waitCurCfg(c, next + 5, 300)).rejects.toThrow(/did not take up configuration/);
      const [row] = await c.transact('Open_vSwitch', [
        { op: 'select', table: 'Open_vSwitch', where: [], columns: ['cur_cfg', 'bridges'] },
      ]);
      expect((row as { rows: { cur_cfg: number }[] }).rows[0]?.cur_cfg).toBe(next);
      expect(setOf((row as { rows: { bridges: unknown }[] }).rows[0]?.bridges).length).toBe(2);
    } finally {
      c.close();
      sw.close();
    }
  });

  it('refuses a socket nobody serves, as an OvsdbError', async () => {
    await expect(OvsdbClient.connect(join(dir, 'nobody.sock'), 500)).rejects.toBeInstanceOf(OvsdbError);
  });
});
