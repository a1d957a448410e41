import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { AuditLog } from '../audit/log.js';
import { OpError } from '../../common/contract/index.js';
import type { MessageBus } from '../../common/dbus/calls.js';
import type { PluginContext, SectionDiff, StatePlugin } from '../../sdk/index.js';
import type { PluginRecord } from '../plugins/discover.js';
import { parseManifest } from '../plugins/manifest.js';
import { StateEngine } from './engine.js';
import { ApplyJournal } from './journal.js';
import { REDACTED } from './redact.js';
import { PluginStateSnapshots, prepareDataDir } from '../storage/index.js';
import { PluginRegistry } from './registry.js';

// Engine logic with plugins that keep their "host" in memory: the ordering of checkpoints,
// rollback and redaction is the engine's, whatever system a real plugin drives. (Plugins loaded from
// OP_DBUS_PLUGIN_PATH on a real core: test/core/plugins.test.ts.)
type KV = Record<string, string>;

class MemoryPlugin implements StatePlugin<KV, KV> {
  host: KV = {};
  failApply = false;
  failVerify = false;
  readonly calls: string[];

  constructor(
    readonly name: string,
    calls: string[],
  ) {
    this.calls = calls;
  }
  available() {
    return Promise.resolve({ available: true as const });
  }
  query() {
    return Promise.resolve({ ...this.host });
  }
  diff(current: KV, desired: KV): Promise<SectionDiff> {
    return Promise.resolve({
      resources: Object.entries(desired).map(([k, v]) => ({
        id: k,
        action:
          current[k] === v
            ? ('noop' as const)
            : current[k] === undefined
              ? ('create' as const)
              : ('modify' as const),
        changes:
          current[k] === v ? [] : [{ path: `/plugins/${this.name}/${k}`, before: current[k], after: v }],
      })),
    });
  }
  checkpoint(desired: KV) {
    this.calls.push(`${this.name}.checkpoint`);
    return Promise.resolve(Object.fromEntries(Object.keys(desired).map((k) => [k, this.host[k] ?? ''])));
  }
  apply(diff: SectionDiff, desired: KV, _ctx?: PluginContext) {
    this.calls.push(`${this.name}.apply`);
    if (this.failApply)
      return Promise.reject(new OpError('DBusCallFailed', `${this.name} refused`, { plugin: this.name }));
    Object.assign(this.host, desired);
    return Promise.resolve({ changed: diff.resources.filter((r) => r.action !== 'noop').length });
  }
  verify(desired: KV) {
    const drift = Object.entries(desired)
      .filter(([k, v]) => this.failVerify || this.host[k] !== v)
      .map(([k, v]) => ({ path: `/plugins/${this.name}/${k}`, expected: v, actual: this.host[k] }));
    return Promise.resolve({ drift });
  }
  rollback(cp: KV) {
    this.calls.push(`${this.name}.rollback`);
    const restored = { ...this.host, ...cp };
    this.host = Object.fromEntries(Object.entries(restored).filter(([, v]) => v !== ''));
    return Promise.resolve();
  }
}

/** A plugin record as discovery would make it from a plugin.toml. */
function record(plugin: MemoryPlugin, schema: z.ZodType, after: string[] = []): PluginRecord {
  const manifest = parseManifest(
    `[plugin]\nname = "${plugin.name}"\nversion = "0.0.1"\n[dependencies]\nplugins = ${JSON.stringify(after)}\n`,
    `${plugin.name}/plugin.toml`,
  );
  return {
    name: plugin.name,
    version: '0.0.1',
    source: 'community',
    dir: '/nowhere',
    manifest,
    schema: z.toJSONSchema(schema, { io: 'input' }) as Record<string, unknown>,
    impl: plugin as StatePlugin,
  };
}

const noBus = (): MessageBus => {
  throw new Error('these plugins use no bus');
};
const actor = { uid: 0, subject: ':1.42', action: 'org.opdbus.apply' };
let dir: string;
let audit: AuditLog;
let calls: string[];
let a: MemoryPlugin;
let b: MemoryPlugin;
let registry: PluginRegistry;
let engine: StateEngine;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'opdbus-engine-'));
  audit = AuditLog.open(join(dir, 'audit.sqlite'));
  calls = [];
  a = new MemoryPlugin('alpha', calls);
  b = new MemoryPlugin('beta', calls);
  // beta comes after alpha; listing it first proves the order is the manifests', not the list's
  registry = new PluginRegistry([
    record(
      b,
      z
        .object({ token: z.string().meta({ 'x-secret': true }), port: z.string() })
        .partial()
        .strict(),
      ['alpha'],
    ),
    record(a, z.object({ name: z.string() }).partial().strict()),
  ]);
  engine = new StateEngine({
    registry,
    bus: noBus,
    audit: { record: (entry) => audit.appendQueued(entry) },
    journal: new ApplyJournal(dir),
    dataDir: dir,
    verifyAttempts: 1,
  });
});
afterEach(() => {
  audit.close();
  rmSync(dir, { recursive: true, force: true });
});

const doc = (alpha: KV, beta: KV): string => JSON.stringify({ version: 1, plugins: { beta, alpha } });

describe('StateEngine', () => {
  it('applies in dependency order and verifies', async () => {
    const plan = await engine.plan(doc({ name: 'x' }, { port: '51820' }), 'f.json', actor);
    expect(plan.hasChanges).toBe(true);
    await engine.approve(plan.id, plan.hash, actor);
    const r = await engine.apply(plan.id, plan.hash, actor);
    expect(r.outcome).toBe('applied');
    expect(calls).toEqual(['alpha.checkpoint', 'alpha.apply', 'beta.checkpoint', 'beta.apply']);
    expect(a.host).toEqual({ name: 'x' });
    expect(b.host).toEqual({ port: '51820' });
  });

  it('rolls back every applied plugin in reverse order when a later one fails, and says so', async () => {
    b.failApply = true;
    const plan = await engine.plan(doc({ name: 'x' }, { port: '1' }), undefined, actor);
    await engine.approve(plan.id, plan.hash, actor);
    const err = (await engine.apply(plan.id, plan.hash, actor).catch((e: unknown) => e)) as OpError;
    expect(err.code).toBe('ApplyFailed');
    expect(err.message).toMatch(/beta refused/);
    expect(calls).toEqual([
      'alpha.checkpoint',
      'alpha.apply',
      'beta.checkpoint',
      'beta.apply',
      'beta.rollback',
      'alpha.rollback',
    ]);
    expect(a.host).toEqual({});
    const kinds = audit.list({}).entries.map((e) => e.kind);
    expect(kinds.slice(0, 3)).toEqual(['apply', 'rollback', 'rollback']);
    expect(audit.verify().ok).toBe(true);
    expect(new ApplyJournal(dir).unfinished()).toBeUndefined();
  });

  it('a verify that never matches fails the apply and rolls back', async () => {
    a.failVerify = true;
    const plan = await engine.plan(doc({ name: 'y' }, {}), undefined, actor);
    await engine.approve(plan.id, plan.hash, actor);
    await expect(engine.apply(plan.id, plan.hash, actor)).rejects.toMatchObject({ code: 'ApplyFailed' });
    expect(a.host).toEqual({});
  });

  it('redacts x-secret values from plans and audit payloads, but applies the real value', async () => {
    const plan = await engine.plan(doc({}, { token: 's3cret-value', port: '1' }), undefined, actor);
    const text = JSON.stringify(plan);
    expect(text).not.toContain('s3cret-value');
    expect(plan.desired['beta']).toEqual({ token: REDACTED, port: '1' });
    const change = plan.diffs[1]?.resources.find((r) => r.id === 'token')?.changes[0];
    expect(change?.after).toBe(REDACTED);
    const payload = audit.payload(audit.list({ kind: 'plan' }).entries[0]?.payload_hash ?? '');
    expect(JSON.stringify(payload)).not.toContain('s3cret-value');
    await engine.approve(plan.id, plan.hash, actor);
    await engine.apply(plan.id, plan.hash, actor);
    expect(b.host['token']).toBe('s3cret-value');
    // verify's drift report redacts too
    b.host['token'] = 'other-secret';
    const v = await engine.verify(doc({}, { token: 's3cret-value' }), undefined, actor);
    expect(JSON.stringify(v)).not.toMatch(/s3cret-value|other-secret/);
  });

  it('the plan hash binds desired and current state, not key order', async () => {
    const p1 = await engine.plan('{"version":1,"plugins":{"alpha":{"name":"x"}}}', undefined, actor);
    const p2 = await engine.plan('{"plugins":{"alpha":{"name":"x"}},"version":1}', undefined, actor);
    expect(p2.hash).toBe(p1.hash);
    a.host['name'] = 'changed';
    const p3 = await engine.plan('{"version":1,"plugins":{"alpha":{"name":"x"}}}', undefined, actor);
    expect(p3.hash).not.toBe(p1.hash);
  });

  it("restores the plugins' on-disk state from the pre-apply snapshot when an apply fails", async () => {
    const layout = prepareDataDir(join(dir, 'data'));
    const snapshots = new PluginStateSnapshots(layout);
    const stateFile = join(layout.dataDir, 'plugins', 'alpha.state');
    writeFileSync(stateFile, 'before');
    const withSnapshots = new StateEngine({
      registry,
      bus: noBus,
      audit: { record: (entry) => audit.appendQueued(entry) },
      journal: new ApplyJournal(dir),
      dataDir: dir,
      verifyAttempts: 1,
      snapshots,
    });
    const realApply = a.apply.bind(a);
    a.apply = (diff, desired, ctx) => {
      writeFileSync(stateFile, 'during');
      return realApply(diff, desired, ctx);
    };
    b.failApply = true;
    const plan = await withSnapshots.plan(doc({ name: 'x' }, { port: '1' }), undefined, actor);
    await withSnapshots.approve(plan.id, plan.hash, actor);
    await expect(withSnapshots.apply(plan.id, plan.hash, actor)).rejects.toMatchObject({
      code: 'ApplyFailed',
    });
    expect(readFileSync(stateFile, 'utf8')).toBe('before');
    expect(snapshots.list().map((x) => x.label)).toEqual([`pre-apply-${plan.hash.slice(0, 16)}`]);
  });

  it('recovery rolls back an apply the journal shows unfinished, ignoring a torn last line', async () => {
    const journal = new ApplyJournal(dir);
    a.host = { name: 'new' };
    journal.begin({
      type: 'begin',
      applyId: 'A',
      planId: 'P',
      hash: 'h'.repeat(64),
      plugins: ['alpha'],
      time: '',
    });
    journal.record({ type: 'checkpoint', applyId: 'A', plugin: 'alpha', checkpoint: { name: 'old' } });
    journal.record({ type: 'applied', applyId: 'A', plugin: 'alpha' });
    appendFileSync(journal.file, '{"type":"verified","applyId":"A","plu'); // the crash tore this write
    const summary = await engine.recover();
    expect(summary).toMatch(/rolled back \(alpha\)/);
    expect(a.host).toEqual({ name: 'old' });
    expect(journal.unfinished()).toBeUndefined();
    expect(await engine.recover()).toBeUndefined();
  });

  it('names the first schema problem with its pointer, line and column', async () => {
    const text = '{\n  "version": 1,\n  "plugins": { "beta": { "port": 51820 } }\n}';
    const err = (await engine.plan(text, 'host.json', actor).catch((e: unknown) => e)) as OpError;
    expect(err).toBeInstanceOf(OpError);
    expect(err.code).toBe('SchemaError');
    expect(err.where).toMatchObject({
      file: 'host.json',
      pointer: '/plugins/beta/port',
      line: 3,
      plugin: 'beta',
    });
    const unknownKey = (await engine
      .plan('{"version":1,"plugins":{"alpha":{"nmae":"x"}}}', undefined, actor)
      .catch((e: unknown) => e)) as OpError;
    expect(unknownKey.message).toBe('unknown key "nmae" (known: name)');
    expect(unknownKey.where?.pointer).toBe('/plugins/alpha/nmae');
  });

  it("keeps an admin's approved plan however many plans another caller makes", async () => {
    const approved = await engine.plan(doc({ name: 'kept' }, {}), undefined, actor);
    await engine.approve(approved.id, approved.hash, actor);
    const other = { uid: 1000, subject: ':1.99', action: 'org.opdbus.plan' };
    for (let i = 0; i < 80; i++) await engine.plan(doc({ name: `n${i}` }, {}), undefined, other);
    const r = await engine.apply(approved.id, approved.hash, actor);
    expect(r.outcome).toBe('applied');
    expect(a.host).toEqual({ name: 'kept' });
  });

  it('refuses a plugin on a dependency cycle by name, and plans the others', async () => {
    const c = new MemoryPlugin('gamma', calls);
    const d = new MemoryPlugin('delta', calls);
    const schema = z.object({ name: z.string() }).partial().strict();
    const withCycle = new PluginRegistry([
      record(a, schema),
      record(c, schema, ['delta']),
      record(d, schema, ['gamma']),
    ]);
    expect(withCycle.names).toEqual(['alpha']);
    expect(withCycle.blocked.map((x) => x.reason)).toEqual([
      'dependency cycle: gamma → delta → gamma',
      'dependency cycle: delta → gamma → delta',
    ]);
  });
});
