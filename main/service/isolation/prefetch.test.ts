import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BusCall, PluginBus, PluginContext } from '../../sdk/index.js';
import { IsolatedPlugin } from './isolated-plugin.js';

// The reads an isolated plugin's call makes before it writes are made by the core ahead of the
// next call of the same method, and travel with it (isolated-plugin.ts). What must hold: the child
// really gets them instead of asking, they are read when the call starts (never an earlier call's
// answer), a read after a write always reaches the bus, a failed read fails the same way, and a
// read the plugin stops making is no longer made. The child is the real one (bubblewrap, nobody);
// the bus is a counting one of the test's own, so what reached it can be told exactly.

const PLUGIN = `
const at = ['org.example.Counter', '/org/example/Counter', 'org.example.Counter'];
let mode = 'read';
export default {
  plugin: {
    async query(ctx) {
      const all = await ctx.bus.getAll(...at);
      return { n: all.N };
    },
    async apply(diff, desired, ctx) {
      const before = (await ctx.bus.getAll(...at)).N;
      await ctx.bus.call({ destination: at[0], path: at[1], interface: at[2], member: 'Bump', body: [] });
      const after = (await ctx.bus.getAll(...at)).N;
      return { changed: 1, before, after };
    },
    async verify(desired, ctx) {
      try {
        await ctx.bus.getAll(at[0], at[1], 'org.example.Maybe');
        return { ok: true, drift: [] };
      } catch (e) {
        return { ok: false, drift: [{ id: String(e.message), path: String(e.code), expected: 1, actual: 0 }] };
      }
    },
    async rollback(checkpoint, ctx) {
      // reads first or writes first, as told: a read made ahead must not outlive a write
      const bump = () => ctx.bus.call({ destination: at[0], path: at[1], interface: at[2], member: 'Bump', body: [] });
      if (checkpoint.writeFirst) await bump();
      const n = (await ctx.bus.getAll(...at)).N;
      if (!checkpoint.writeFirst) await bump();
      return { n };
    },
    async checkpoint(desired, ctx) {
      // reads on its first call only
      if (mode === 'read') await ctx.bus.reachable(at[0]);
      mode = 'skip';
      return { mode };
    },
  },
};
`;

class CountingBus implements PluginBus {
  n = 0;
  reads = 0;
  writes = 0;
  reachables = 0;
  broken = false;
  call(call: BusCall): Promise<unknown[]> {
    if (call.member !== 'Bump') return Promise.reject(new Error(`no method ${call.member}`));
    this.writes++;
    this.n++;
    return Promise.resolve([]);
  }
  getAll(_d: string, _p: string, iface: string): Promise<Record<string, unknown>> {
    this.reads++;
    if (iface === 'org.example.Maybe' && this.broken)
      return Promise.reject(
        Object.assign(new Error('No such interface “org.example.Maybe”'), { code: 'Failed' }),
      );
    return Promise.resolve({ N: this.n });
  }
  reachable(): Promise<boolean> {
    this.reachables++;
    return Promise.resolve(true);
  }
  listen(): Promise<() => Promise<void>> {
    return Promise.reject(new Error('not here'));
  }
  open(): never {
    throw new Error('not here');
  }
}

describe('an isolated plugin: reads made ahead', () => {
  let parent: string;
  let isolated: IsolatedPlugin;
  const bus = new CountingBus();
  const ctx = (): PluginContext => ({
    plugin: 'counter',
    config: {},
    bus,
    signal: new AbortController().signal,
    deadline: Date.now() + 20_000,
    after: {},
    log: { info: () => undefined, warn: () => undefined },
    progress: () => undefined,
  });

  beforeAll(() => {
    parent = mkdtempSync(join(tmpdir(), 'opdbus-perf2-prefetch-'));
    chmodSync(parent, 0o755);
    const code = join(parent, 'plugin');
    mkdirSync(code, { mode: 0o755 });
    writeFileSync(join(code, 'index.mjs'), PLUGIN, { mode: 0o644 });
    isolated = new IsolatedPlugin({
      name: 'counter',
      start: { kind: 'community', entry: join(code, 'index.mjs') },
      readable: [code],
      stateDir: join(parent, 'state', 'counter'),
      hidden: [],
    });
  });
  afterAll(() => {
    isolated.close();
    rmSync(parent, { recursive: true, force: true });
  });

  it('takes the read made ahead instead of asking, and it is read when the call starts', async () => {
    expect(await isolated.impl.query(ctx())).toEqual({ n: 0 });
    expect(isolated.stats).toEqual({ relayed: 1, readAhead: 0, taken: 0 });
    bus.n = 5; // changed between two calls: the next one must see it
    expect(await isolated.impl.query(ctx())).toEqual({ n: 5 });
    expect(await isolated.impl.query(ctx())).toEqual({ n: 5 });
    // the child asked once; the two later calls' reads were made ahead and taken, each once
    expect(isolated.stats).toEqual({ relayed: 1, readAhead: 2, taken: 2 });
    expect(bus.reads).toBe(3);
  });

  it('sends every read after a write to the bus, so a call sees its own write', async () => {
    const before = { ...isolated.stats };
    bus.n = 10;
    const diff = { resources: [] };
    expect(await isolated.impl.apply(diff, {}, ctx())).toMatchObject({ before: 10, after: 11 });
    bus.n = 20;
    // the second apply takes its first read ahead (the same read as its last one), never the last
    expect(await isolated.impl.apply(diff, {}, ctx())).toMatchObject({ before: 20, after: 21 });
    expect(bus.writes).toBe(2);
    expect(isolated.stats.readAhead - before.readAhead).toBe(1);
    expect(isolated.stats.taken - before.taken).toBe(1);
    // first apply: read, write, read relayed; second: write and the read after it relayed
    expect(isolated.stats.relayed - before.relayed).toBe(5);
  });

  it('never gives a read made ahead after the call wrote', async () => {
    const rollback = (writeFirst: boolean): Promise<unknown> =>
      isolated.impl.rollback({ writeFirst }, ctx()) as Promise<unknown>;
    bus.n = 30;
    expect(await rollback(false)).toEqual({ n: 30 }); // read, then write: the read is learned
    expect(bus.n).toBe(31);
    const taken = isolated.stats.taken;
    // made ahead (N = 31) before the call writes (N = 32): the plugin must see 32
    expect(await rollback(true)).toEqual({ n: 32 });
    expect(isolated.stats.taken).toBe(taken);
  });

  it('gives a read made ahead that fails the same error as a relayed one', async () => {
    bus.broken = true;
    const relayed = await isolated.impl.verify({}, ctx()); // failed: not made ahead next time
    const readAhead = isolated.stats.readAhead;
    bus.broken = false;
    expect(await isolated.impl.verify({}, ctx())).toEqual({ ok: true, drift: [] });
    expect(isolated.stats.readAhead).toBe(readAhead);
    bus.broken = true;
    const ahead = await isolated.impl.verify({}, ctx());
    expect(isolated.stats.readAhead).toBe(readAhead + 1);
    expect(relayed.drift[0]).toMatchObject({ id: 'No such interface “org.example.Maybe”', path: 'Failed' });
    expect(ahead).toEqual(relayed);
  });

  it('stops making a read the method no longer makes', async () => {
    const start = bus.reachables;
    for (let i = 0; i < 4; i++) await isolated.impl.checkpoint({}, ctx());
    // its own read in the first call, one made ahead for the second (not taken), none after
    expect(bus.reachables - start).toBe(2);
  });
});
