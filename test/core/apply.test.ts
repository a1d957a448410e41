import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { TestSandbox, writeDocument } from '../support/sandbox.js';

// The walking skeleton end to end: real dbus-daemon, real systemd-hostnamed (in an overlay on /etc),
// the core as its own process, and the CLI as an admin runs it.
let sb: TestSandbox;
let docs: string;

beforeAll(async () => {
  sb = await TestSandbox.start();
  docs = join(sb.dir, '..', 'docs');
});
afterAll(async () => {
  await sb?.stop();
});

const desired = `// managed by op-dbus
{
  "version": 1,
  "plugins": {
    "hostname": {
      "pretty_hostname": "Web Server 1",
      "location": "Rack 4, Frankfurt", /* trailing commas are fine */
      "deployment": "staging",
    },
  },
}`;

describe('plan → apply → verify on the sandbox host', () => {
  it('plans the change with exit code 2 and names before → after', () => {
    const file = writeDocument(docs, 'web.jsonc', desired);
    const r = sb.cli(['plan', file, '--json']);
    expect(r.code).toBe(2);
    const plan = JSON.parse(r.stdout) as {
      hash: string;
      hasChanges: boolean;
      diffs: { resources: { id: string; changes: { before: unknown; after: unknown }[] }[] }[];
    };
    expect(plan.hasChanges).toBe(true);
    const ids = plan.diffs[0]?.resources
      .filter((x) => x.changes.length > 0)
      .map((x) => x.id)
      .sort();
    expect(ids).toEqual(['deployment', 'location', 'pretty_hostname']);
    expect(plan.diffs[0]?.resources.find((x) => x.id === 'location')?.changes[0]).toMatchObject({
      after: 'Rack 4, Frankfurt',
    });
    expect(plan.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses to apply without confirmation when stdin is not a terminal', () => {
    const file = writeDocument(docs, 'web.jsonc', desired);
    const r = sb.cli(['apply', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/pass --yes/);
    expect(sb.machineInfo()['LOCATION']).toBeUndefined();
  });

  it('applies, and independent readers (the overlay file, busctl) see the new values', () => {
    const file = writeDocument(docs, 'web.jsonc', desired);
    const r = sb.cli(['apply', file, '--yes', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      plan: { hash: string };
      apply: { outcome: string; auditSeq: number };
    };
    expect(out.apply.outcome).toBe('applied');
    const info = sb.machineInfo();
    expect(info['PRETTY_HOSTNAME']).toBe('Web Server 1');
    expect(info['LOCATION']).toBe('Rack 4, Frankfurt');
    expect(info['DEPLOYMENT']).toBe('staging');
    expect(sb.hostnameProperty('Location')).toBe('Rack 4, Frankfurt');

    // the audit log holds plan, approve and apply of exactly that hash, and still verifies
    const list = JSON.parse(sb.cli(['audit', 'list', '--json']).stdout) as {
      entries: { kind: string; summary: string }[];
    };
    const kinds = list.entries.map((e) => e.kind);
    expect(kinds.slice(0, 3)).toEqual(['apply', 'approve', 'plan']);
    for (const e of list.entries.slice(0, 3)) expect(e.summary).toContain(out.plan.hash.slice(0, 12));
    const v = sb.cli(['audit', 'verify', '--json']);
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true });
  });

  it('a fresh core process plans no change after the apply (exit 0)', async () => {
    const before = sb.corePid();
    const after = await sb.restartCore();
    expect(after).not.toBe(before);
    const file = writeDocument(docs, 'web.jsonc', desired);
    const r = sb.cli(['plan', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/No changes/);
  });

  it('verify reports an out-of-band change (busctl) as drift with exit 2, and in sync before it', () => {
    const file = writeDocument(docs, 'web.jsonc', desired);
    expect(sb.cli(['verify', file]).code).toBe(0);
    sb.setHostnameOutOfBand('SetLocation', 'Moved by hand');
    const r = sb.cli(['verify', file, '--json']);
    expect(r.code).toBe(2);
    const drift = JSON.parse(r.stdout) as {
      inSync: boolean;
      drift: { path: string; expected: string; actual: string }[];
    };
    expect(drift.inSync).toBe(false);
    expect(drift.drift).toEqual([
      {
        plugin: 'hostname',
        path: '/plugins/hostname/location',
        expected: 'Rack 4, Frankfurt',
        actual: 'Moved by hand',
      },
    ]);
    const last = JSON.parse(sb.cli(['audit', 'list', '--limit', '1', '--json']).stdout) as {
      entries: { kind: string }[];
    };
    expect(last.entries[0]?.kind).toBe('drift');
  });

  it('query --json prints the state the bus reports', () => {
    const r = sb.cli(['query', 'hostname', '--json']);
    expect(r.code).toBe(0);
    const q = JSON.parse(r.stdout) as { plugins: { plugin: string; state: Record<string, string> }[] };
    expect(q.plugins[0]?.state['location']).toBe(sb.hostnameProperty('Location'));
    expect(q.plugins[0]?.state['static_hostname']).toBe(sb.hostnameProperty('StaticHostname'));
  });

  it('publishes the composed document schema', () => {
    const r = sb.cli(['schema']);
    const schema = JSON.parse(r.stdout) as {
      properties: { plugins: { properties: Record<string, { properties: object }> } };
    };
    // every loaded plugin's section: the built-ins and the generated ones (hostname1 is shadowed by hostname)
    expect(Object.keys(schema.properties.plugins.properties)).toEqual(
      expect.arrayContaining([
        'hostname',
        'lxc',
        'net',
        'openflow',
        'wireguard',
        'systemd',
        'packagekit',
        'timedate1',
      ]),
    );
    expect(Object.keys(schema.properties.plugins.properties)).not.toContain('hostname1');
    expect(Object.keys(schema.properties.plugins.properties['hostname']?.properties ?? {})).toContain(
      'static_hostname',
    );
  });
});
