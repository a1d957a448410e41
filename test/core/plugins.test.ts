import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  symlinkSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { ErrorPayload, PluginsResponse } from '../../main/common/contract/index.js';
import { polkitRulesDir } from '../../main/devhost/host.js';
import { ROOT, TestSandbox, waitFor, writeDocument } from '../support/sandbox.js';
import { ProbeHost } from '../support/probe-host.js';

// The plugin platform against real parts: plugins installed from OP_DBUS_PLUGIN_PATH as a user
// installs them (test/support/probe-plugin.mjs, and the files example), a real core on a real bus
// with polkitd and hostnamed. The host is read back independently: the probe's state files and its
// call log on disk, busctl for hostnamed, the files on disk for the example.
let sb: TestSandbox;
let docs: string;
let pluginPath: string;
let probeRoot: string;
let filesRoot: string;
const PROBE = join(ROOT, 'test/support/probe-plugin.mjs');
let probe: ProbeHost;
const installProbe = (name: string, o: Parameters<ProbeHost['install']>[2] = {}): void =>
  probe.install(pluginPath, name, o);
const probeState = (name: string): Record<string, string> => probe.state(name);
const calls = (): string[] => probe.calls();
const resetCalls = (): void => probe.resetCalls();

const doc = (plugins: Record<string, unknown>): string => JSON.stringify({ version: 1, plugins });
const errorOf = (stdout: string): ErrorPayload => (JSON.parse(stdout) as { error: ErrorPayload }).error;

interface AuditRow {
  kind: string;
  plugin: string | null;
  summary: string;
}
/** Audit entries, newest first (as `audit list` gives them). */
const audit = (...args: string[]): AuditRow[] =>
  (
    JSON.parse(sb.cli(['audit', 'list', '--limit', '200', ...args, '--json']).stdout) as {
      entries: AuditRow[];
    }
  ).entries;

beforeAll(async () => {
  sb = await TestSandbox.start();
  const base = join(sb.dir, '..');
  docs = join(base, 'docs');
  pluginPath = join(base, 'plugins');
  probeRoot = join(base, 'probe-host');
  probe = new ProbeHost(probeRoot);
  filesRoot = join(base, 'files-host');
  for (const d of [pluginPath, probeRoot, filesRoot]) mkdirSync(d, { recursive: true, mode: 0o755 });
  // community plugins run isolated as nobody: the directories they manage are theirs to write
  for (const d of [probeRoot, filesRoot]) chownSync(d, 65534, 65534);
  installProbe('alpha');
  installProbe('beta', { after: ['alpha'] });
  installProbe('gamma', { after: ['delta'] });
  installProbe('delta', { after: ['gamma'] });
  installProbe('epsilon', { after: ['alpha', 'absent'] });
  installProbe('slowpoke', { after: ['alpha'], deadline: 1 });
  installProbe('snoop', {
    permissions: `[[permissions.dbus]]
name = "org.freedesktop.hostname1"
interface = "org.freedesktop.hostname1"
properties = "read"`,
  });
  // the example plugin, installed as docs/plugins.md says, with its root pointed at this test's directory
  cpSync(join(ROOT, 'examples/plugins/files'), join(pluginPath, 'files'), { recursive: true });
  const manifest = join(pluginPath, 'files', 'plugin.toml');
  writeFileSync(
    manifest,
    readFileSync(manifest, 'utf8')
      .replace(/^root = .*$/m, `root = "${filesRoot}"`)
      .replace(/^write = .*$/m, `write = ["${filesRoot}"]`),
  );
  // a directory anyone may write: the core must refuse to load code from it
  const open = join(base, 'world-writable');
  mkdirSync(join(open, 'evil'), { recursive: true });
  chmodSync(open, 0o777);
  copyFileSync(PROBE, join(open, 'evil', 'index.mjs'));
  writeFileSync(
    join(open, 'evil', 'plugin.toml'),
    '[plugin]\nname = "evil"\nversion = "0.0.1"\nentry = "index.mjs"\n',
  );
  await sb.restartCore({ OP_DBUS_PLUGIN_PATH: `${pluginPath}:${open}` });
});
afterAll(async () => {
  await sb?.stop();
});

describe('plugins found through their manifests', () => {
  it('lists built-in and community plugins in apply order, with after, permissions, availability and notes', () => {
    const r = sb.cli(['plugin', 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const list = JSON.parse(r.stdout) as PluginsResponse;
    const byName = new Map(list.plugins.map((p) => [p.name, p]));
    expect(byName.get('hostname')).toMatchObject({ source: 'built-in', available: true, version: '1.1.0' });
    expect(byName.get('files')).toMatchObject({ source: 'community', available: true, after: [] });
    expect(byName.get('beta')).toMatchObject({ source: 'community', after: ['alpha'], available: true });
    expect(byName.get('snoop')?.permissions.dbus).toEqual([
      expect.objectContaining({ name: 'org.freedesktop.hostname1', properties: 'read', methods: [] }),
    ]);
    const names = list.plugins.map((p) => p.name);
    expect(names.indexOf('alpha')).toBeLessThan(names.indexOf('beta'));
    // a cycle is refused, naming the cycle; an after naming a plugin that is not installed is a note
    expect(byName.get('gamma')).toMatchObject({
      available: false,
      why_not: 'dependency cycle: gamma → delta → gamma',
    });
    expect(byName.get('epsilon')).toMatchObject({ available: true, after: ['alpha'] });
    expect(byName.get('epsilon')?.notes.join()).toMatch(/after names absent, which is not installed/);
    expect(byName.has('evil')).toBe(false);
    expect(list.refused).toEqual([
      expect.objectContaining({
        dir: expect.stringMatching(/world-writable$/) as unknown,
        reason: expect.stringMatching(/writable by every user/) as unknown,
      }),
    ]);
  });

  it('composes every plugin’s section schema into the document schema', () => {
    const schema = JSON.parse(sb.cli(['schema']).stdout) as {
      properties: { plugins: { properties: Record<string, unknown> } };
    };
    expect(Object.keys(schema.properties.plugins.properties)).toEqual(
      expect.arrayContaining(['hostname', 'files', 'alpha']),
    );
  });
});

describe('the engine’s rules', () => {
  it('applies each plugin after the plugins it names in after, whatever the document order', () => {
    resetCalls();
    const file = writeDocument(
      docs,
      'order.json',
      doc({ beta: { values: { b: '1' } }, alpha: { values: { a: '1' } } }),
    );
    const r = sb.cli(['apply', file, '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(calls().filter((c) => !c.includes('diff'))).toEqual([
      'alpha.checkpoint',
      'alpha.apply(a)',
      'beta.checkpoint',
      'beta.apply(b)',
    ]);
    // beta's diff saw alpha's state, as its after allows
    expect(calls()).toContain('beta.diff(after:alpha)');
    expect(probeState('alpha')).toEqual({ a: '1' });
    expect(probeState('beta')).toEqual({ b: '1' });
  });

  it('refuses a document naming a plugin on a dependency cycle, naming the cycle and where', () => {
    const file = writeDocument(docs, 'cycle.json', doc({ gamma: { values: { g: '1' } } }));
    const r = sb.cli(['plan', file, '--json']);
    expect(r.code).toBe(1);
    expect(errorOf(r.stdout)).toMatchObject({
      code: 'DependencyCycle',
      message: expect.stringContaining('gamma → delta → gamma') as unknown,
      where: { plugin: 'gamma', file },
    });
  });

  it('rolls the first plugin back, in reverse order, when the second fails; the error names the plugin', () => {
    resetCalls();
    const file = writeDocument(
      docs,
      'fail.json',
      doc({ alpha: { values: { a: '2' } }, beta: { values: { b: '2' }, fail_apply: true } }),
    );
    const r = sb.cli(['apply', file, '--yes', '--json']);
    expect(r.code).toBe(1);
    expect(errorOf(r.stdout)).toMatchObject({ code: 'ApplyFailed', where: { plugin: 'beta' } });
    expect(errorOf(r.stdout).message).toMatch(/beta was told to fail/);
    expect(probeState('alpha')).toEqual({ a: '1' });
    expect(probeState('beta')).toEqual({ b: '1' });
    const log = calls();
    expect(log.indexOf('beta.rollback')).toBeLessThan(log.indexOf('alpha.rollback'));
    expect(
      audit('--kind', 'rollback')
        .slice(0, 2)
        .map((e) => e.plugin),
    ).toEqual(['alpha', 'beta']);
  });

  it('runs irreversible changes last, only when the core is given each one confirmed, even past the client', async () => {
    resetCalls();
    const file = writeDocument(
      docs,
      'irreversible.json',
      doc({ alpha: { values: { a: '3', gone: 'x' }, irreversible: ['gone'] }, beta: { values: { b: '3' } } }),
    );
    const plan = sb.cli(['plan', file, '--json']);
    expect((JSON.parse(plan.stdout) as { irreversible: string[] }).irreversible).toEqual(['alpha/gone']);
    // the CLI without --confirm-irreversible: the refusal comes from the core
    const refused = sb.cli(['apply', file, '--yes', '--json']);
    expect(refused.code).toBe(1);
    expect(errorOf(refused.stdout)).toMatchObject({
      code: 'NotConfirmed',
      message: expect.stringContaining('alpha/gone') as unknown,
    });
    // the client bypassed: a raw D-Bus call with busctl, after a plan and approval of its own
    const client = await sb.client();
    try {
      const p = await client.call('Plan', { document: readFileSync(file, 'utf8') });
      await client.call('Approve', { planId: p.id, hash: p.hash });
      const raw = sb.busctlCore('Apply', { planId: p.id, hash: p.hash });
      expect(raw.status).not.toBe(0);
      expect(raw.stderr).toMatch(/not confirmed: alpha\/gone/);
      // a confirmation that leaves one out is no confirmation
      await expect(
        client.call('Apply', { planId: p.id, hash: p.hash, confirmIrreversible: [] }),
      ).rejects.toMatchObject({ code: 'NotConfirmed' });
    } finally {
      client.close();
    }
    expect(probeState('alpha')).toEqual({ a: '1' });
    expect(calls().filter((c) => c.includes('apply'))).toEqual([]);
    const ok = sb.cli(['apply', file, '--yes', '--confirm-irreversible', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(calls().filter((c) => c.includes('apply'))).toEqual([
      'alpha.apply(a)',
      'beta.apply(b)',
      'alpha.apply(gone)',
    ]);
    expect(probeState('alpha')).toEqual({ a: '3', gone: 'x' });
    expect(audit('--kind', 'apply').at(0)?.summary).toMatch(/irreversible, confirmed: alpha\/gone/);
  });

  it('cancels on Ctrl-C between steps and rolls back what was applied', async () => {
    resetCalls();
    const file = writeDocument(
      docs,
      'cancel.json',
      doc({ alpha: { values: { a: '4' } }, beta: { values: { b: '4' }, delay_ms: 60_000 } }),
    );
    const child = sb.cliBackground(['apply', file, '--yes']);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor('beta to start applying', () => calls().includes('beta.apply(b)'));
    expect(probeState('alpha')).toEqual({ a: '4', gone: 'x' });
    child.kill('SIGINT');
    expect(await exited).toBe(1);
    expect(stderr).toMatch(/cancelling/);
    expect(stderr).toMatch(
      /Cancelled: apply of plan [0-9a-f]+ was cancelled and was rolled back: cancelled by uid 0/,
    );
    expect(probeState('alpha')).toEqual({ a: '3', gone: 'x' });
    expect(probeState('beta')).toEqual({ b: '3' });
    expect(audit('--kind', 'apply').at(0)?.summary).toMatch(/failed \(cancelled by uid 0 .*\); rolled back/);
  });

  it('abandons a plugin past its deadline and rolls back', () => {
    resetCalls();
    const file = writeDocument(
      docs,
      'deadline.json',
      doc({
        alpha: { values: { a: '5' } },
        slowpoke: { values: { s: '5' }, delay_ms: 4000, honour_signal: false },
      }),
    );
    const started = Date.now();
    const r = sb.cli(['apply', file, '--yes', '--json']);
    expect(r.code).toBe(1);
    // the isolated child is killed at the deadline and a new one started for the rollback
    expect(Date.now() - started).toBeLessThan(6000);
    expect(errorOf(r.stdout)).toMatchObject({ code: 'ApplyFailed', where: { plugin: 'slowpoke' } });
    expect(errorOf(r.stdout).message).toMatch(
      /slowpoke did not finish apply within its deadline of 1 s; abandoned/,
    );
    expect(probeState('alpha')).toEqual({ a: '3', gone: 'x' });
    expect(probeState('slowpoke')).toEqual({});
  });

  it('refuses a bus call outside the plugin’s permissions on the real bus, names it, and audits it', () => {
    const before = sb.hostnameProperty('Location');
    const call = {
      destination: 'org.freedesktop.hostname1',
      path: '/org/freedesktop/hostname1',
      interface: 'org.freedesktop.hostname1',
      member: 'SetLocation',
      signature: 'sb',
      body: ['Stolen', false],
    };
    const file = writeDocument(docs, 'snoop.json', doc({ snoop: { values: { s: '1' }, call } }));
    const r = sb.cli(['apply', file, '--yes', '--json']);
    expect(r.code).toBe(1);
    const e = errorOf(r.stdout);
    expect(e.message).toMatch(
      /plugin snoop may not call org\.freedesktop\.hostname1\.SetLocation on org\.freedesktop\.hostname1/,
    );
    expect(e.where).toMatchObject({
      plugin: 'snoop',
      dbus: { service: 'org.freedesktop.hostname1', member: 'SetLocation' },
    });
    expect(sb.hostnameProperty('Location')).toBe(before);
    expect(audit('--kind', 'plugin').at(0)).toMatchObject({
      plugin: 'snoop',
      summary: expect.stringContaining('SetLocation') as unknown,
    });
    // what its permissions do allow still works: reading hostname1's properties
    const read = writeDocument(
      docs,
      'snoop-read.json',
      doc({
        snoop: {
          values: { s: '2' },
          call: {
            ...call,
            interface: 'org.freedesktop.DBus.Properties',
            member: 'GetAll',
            signature: 's',
            body: ['org.freedesktop.hostname1'],
          },
        },
      }),
    );
    expect(sb.cli(['apply', read, '--yes']).code).toBe(0);
  });

  it('tells polkit which plugins an apply touches, so a rules file can allow one and refuse another', async () => {
    writeFileSync(
      join(polkitRulesDir(sb.dir), '50-opdbus-plugins.rules'),
      `polkit.addRule(function (action, subject) {
  if (subject.user != "nobody" || action.id.indexOf("org.opdbus.") != 0) return polkit.Result.NOT_HANDLED;
  if (action.id != "org.opdbus.apply") return polkit.Result.YES;
  return action.lookup("org.opdbus.plugins").split(",").indexOf("beta") >= 0 ? polkit.Result.NO : polkit.Result.YES;
});
`,
    );
    chmodSync(docs, 0o755);
    await waitFor(
      'polkitd to load the rules',
      () => sb.cli(['query', 'alpha'], { uid: 'nobody' }).code === 0,
    );
    const onlyAlpha = writeDocument(docs, 'polkit-alpha.json', doc({ alpha: { values: { a: '6' } } }));
    const withBeta = writeDocument(
      docs,
      'polkit-beta.json',
      doc({ alpha: { values: { a: '7' } }, beta: { values: { b: '7' } } }),
    );
    chmodSync(onlyAlpha, 0o644);
    chmodSync(withBeta, 0o644);
    const refused = sb.cli(['apply', withBeta, '--yes', '--json'], { uid: 'nobody' });
    expect(refused.code).toBe(1);
    expect(errorOf(refused.stdout)).toMatchObject({ code: 'NotAuthorized' });
    expect(probeState('beta')).toEqual({ b: '3' });
    const allowed = sb.cli(['apply', onlyAlpha, '--yes', '--json'], { uid: 'nobody' });
    expect(allowed.code, allowed.stdout + allowed.stderr).toBe(0);
    expect(probeState('alpha')).toMatchObject({ a: '6' });
  });
});

describe('drift and converge', () => {
  it('names what drifted from the last applied document, apart from any plan, and converges it back', () => {
    const file = writeDocument(
      docs,
      'drift.json',
      doc({
        hostname: { location: 'Rack 9' },
        files: {
          files: { motd: { content: 'hello\n' }, 'app/token': { secret_content: 's3cret', mode: '0600' } },
        },
      }),
    );
    const applied = sb.cli(['apply', file, '--yes', '--json']);
    expect(applied.code, applied.stderr).toBe(0);
    const hash = (JSON.parse(applied.stdout) as { plan: { hash: string } }).plan.hash;
    expect(readFileSync(join(filesRoot, 'motd'), 'utf8')).toBe('hello\n');
    expect(sb.cli(['drift']).code).toBe(0);
    // out of band: hostnamed through busctl, the files by hand
    sb.setHostnameOutOfBand('SetLocation', 'Elsewhere');
    writeFileSync(join(filesRoot, 'motd'), 'tampered\n');
    writeFileSync(join(filesRoot, 'app/token'), 'leaked');
    const drift = sb.cli(['drift', '--json']);
    expect(drift.code).toBe(2);
    const r = JSON.parse(drift.stdout) as {
      planHash: string;
      drift: { plugin: string; path: string; expected: unknown; actual: unknown }[];
    };
    expect(r.planHash).toBe(hash);
    expect(r.drift).toEqual(
      expect.arrayContaining([
        { plugin: 'hostname', path: '/plugins/hostname/location', expected: 'Rack 9', actual: 'Elsewhere' },
        expect.objectContaining({
          plugin: 'files',
          path: '/plugins/files/files/motd',
          actual: { content: 'tampered\n', mode: '0644' },
        }),
      ]),
    );
    // the secret file's drift names it, but neither value
    expect(drift.stdout).not.toMatch(/s3cret|leaked/);
    const converge = sb.cli(['converge', '--json']);
    expect(converge.code, converge.stderr).toBe(0);
    expect(sb.hostnameProperty('Location')).toBe('Rack 9');
    expect(readFileSync(join(filesRoot, 'motd'), 'utf8')).toBe('hello\n');
    expect(readFileSync(join(filesRoot, 'app/token'), 'utf8')).toBe('s3cret');
    expect(sb.cli(['drift']).code).toBe(0);
    const entry = audit('--kind', 'converge').at(0);
    expect(entry?.summary).toMatch(
      new RegExp(`converge to applied plan ${hash}: new plan [0-9a-f]+ with 3 change`),
    );
    expect(JSON.stringify(audit())).not.toMatch(/s3cret|leaked/);
  });
});

describe('the files example plugin, installed from OP_DBUS_PLUGIN_PATH', () => {
  it('prunes files the document does not name only when the section says prune, and undoes it on failure', () => {
    writeFileSync(join(filesRoot, 'stray.conf'), 'left by hand\n');
    const keep = writeDocument(
      docs,
      'files-keep.json',
      doc({ files: { files: { motd: { content: 'hello\n' } } } }),
    );
    expect(sb.cli(['plan', keep, '--json']).code).toBe(0);
    const prune = writeDocument(
      docs,
      'files-prune.json',
      doc({
        files: {
          files: { motd: { content: 'hello\n' }, 'app/token': { secret_content: 's3cret', mode: '0600' } },
          prune: true,
        },
      }),
    );
    const plan = JSON.parse(sb.cli(['plan', prune, '--json']).stdout) as {
      diffs: { resources: { id: string; action: string }[] }[];
    };
    expect(plan.diffs[0]?.resources.filter((r) => r.action !== 'noop')).toEqual([
      expect.objectContaining({ id: 'stray.conf', action: 'delete' }),
    ]);
    // another plugin of the same apply fails: the pruned file comes back
    const failing = writeDocument(
      docs,
      'files-prune-fail.json',
      doc({
        files: {
          files: { motd: { content: 'hello\n' }, 'app/token': { secret_content: 's3cret', mode: '0600' } },
          prune: true,
        },
        snoop: { values: { s: '9' }, fail_apply: true },
      }),
    );
    expect(sb.cli(['apply', failing, '--yes']).code).toBe(1);
    expect(readFileSync(join(filesRoot, 'stray.conf'), 'utf8')).toBe('left by hand\n');
    expect(sb.cli(['apply', prune, '--yes']).code).toBe(0);
    expect(existsSync(join(filesRoot, 'stray.conf'))).toBe(false);
  });

  it('refuses to write through a symbolic link planted under its root', () => {
    const outside = join(sb.dir, '..', 'outside');
    mkdirSync(outside, { recursive: true });
    symlinkSync(outside, join(filesRoot, 'evil'));
    const file = writeDocument(
      docs,
      'files-link.json',
      doc({ files: { files: { 'evil/passwd': { content: 'root::0:0::/:/bin/sh\n' } } } }),
    );
    const r = sb.cli(['apply', file, '--yes', '--json']);
    expect(r.code).toBe(1);
    expect(errorOf(r.stdout).message).toMatch(/evil is a symbolic link; refusing/);
    expect(existsSync(join(outside, 'passwd'))).toBe(false);
    rmSync(join(filesRoot, 'evil'));
  });
});
