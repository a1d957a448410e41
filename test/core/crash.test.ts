import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { OpError } from '../../main/common/contract/index.js';
import { TestSandbox, waitFor, writeDocument } from '../support/sandbox.js';

// kill -9 of the core at each step boundary of an apply: the core halts there (OP_DBUS_TEST_HALT_AT,
// after writing `halted-at`), the test kills it with SIGKILL, starts a fresh core, and checks the host
// with an independent reader and the audit log's account of what happened.
let sb: TestSandbox;
let docs: string;

beforeAll(async () => {
  sb = await TestSandbox.start();
  docs = join(sb.dir, '..', 'docs');
});
afterAll(async () => {
  await sb?.stop();
});

function doc(location: string): string {
  return JSON.stringify({
    version: 1,
    plugins: { hostname: { location, pretty_hostname: `Host at ${location}` } },
  });
}

interface Entry {
  seq: number;
  kind: string;
  summary: string;
}

function auditEntries(): Entry[] {
  return (JSON.parse(sb.cli(['audit', 'list', '--limit', '50', '--json']).stdout) as { entries: Entry[] })
    .entries;
}

async function crashAt(point: string, location: string): Promise<{ recovery: Entry; rollback: Entry[] }> {
  const haltMarker = join(sb.dataDir, 'halted-at');
  rmSync(haltMarker, { force: true });
  await sb.restartCore({ OP_DBUS_TEST_HALT_AT: point });
  const file = writeDocument(docs, `crash-${point}.json`, doc(location));
  const apply = sb.cliBackground(['apply', file, '--yes']);
  try {
    await waitFor(`the core to halt at ${point}`, () => existsSync(haltMarker));
    expect(readFileSync(haltMarker, 'utf8')).toBe(point);
    const pid = sb.corePid();
    expect(pid).toBeDefined();
    const before = auditEntries().length;
    process.kill(pid as number, 'SIGKILL');
    await waitFor('the core to die', () => sb.corePid() === undefined);
    await sb.restartCore();
    const after = auditEntries();
    const added = after.slice(0, after.length - before);
    const recovery = added.find((e) => e.kind === 'recovery');
    expect(recovery).toBeDefined();
    return { recovery: recovery as Entry, rollback: added.filter((e) => e.kind === 'rollback') };
  } finally {
    apply.kill('SIGKILL');
  }
}

describe('kill -9 of the core during an apply', () => {
  const start = 'Original Rack';

  beforeAll(() => {
    const file = writeDocument(docs, 'start.json', doc(start));
    expect(sb.cli(['apply', file, '--yes']).code).toBe(0);
  });

  for (const point of ['after-journal', 'after-call', 'before-verify']) {
    it(`at ${point}: the host is back at its earlier state and the audit log says rolled back`, async () => {
      const { recovery, rollback } = await crashAt(point, `Crash ${point}`);
      expect(recovery.summary).toMatch(/rolled back/);
      expect(rollback.map((e) => e.summary).join()).toMatch(/undone at start-up/);
      expect(sb.machineInfo()['LOCATION']).toBe(start);
      expect(sb.hostnameProperty('PrettyHostname')).toBe(`Host at ${start}`);
      expect(sb.cli(['verify', writeDocument(docs, 'start.json', doc(start))]).code).toBe(0);
      expect(sb.cli(['audit', 'verify']).code).toBe(0);
    });
  }

  it('after every plugin verified: recovery records the apply as fully applied and verified', async () => {
    const { recovery, rollback } = await crashAt('after-verify', 'Finished Rack');
    expect(recovery.summary).toMatch(/fully applied and verified/);
    expect(rollback).toEqual([]);
    expect(sb.machineInfo()['LOCATION']).toBe('Finished Rack');
    expect(sb.cli(['audit', 'verify']).code).toBe(0);
  });

  it('a second apply while one runs is refused with ApplyInProgress', async () => {
    const haltMarker = join(sb.dataDir, 'halted-at');
    rmSync(haltMarker, { force: true });
    await sb.restartCore({ OP_DBUS_TEST_HALT_AT: 'after-call' });
    const first = sb.cliBackground(['apply', writeDocument(docs, 'first.json', doc('First')), '--yes']);
    try {
      await waitFor('the first apply to be under way', () => existsSync(haltMarker));
      const client = await sb.client();
      try {
        const plan = await client.call('Plan', { document: doc('Second') });
        await client.call('Approve', { planId: plan.id, hash: plan.hash });
        const err = await client.call('Apply', { planId: plan.id, hash: plan.hash }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(OpError);
        expect((err as OpError).code).toBe('ApplyInProgress');
      } finally {
        client.close();
      }
      const cli = sb.cli(['apply', writeDocument(docs, 'third.json', doc('Third')), '--yes']);
      expect(cli.code).toBe(1);
      expect(cli.stderr).toMatch(/ApplyInProgress/);
    } finally {
      first.kill('SIGKILL');
      process.kill(sb.corePid() as number, 'SIGKILL');
      await waitFor('the core to die', () => sb.corePid() === undefined);
      await sb.restartCore();
    }
    expect(sb.machineInfo()['LOCATION']).toBe('Finished Rack');
  });
});
