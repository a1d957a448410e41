import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PluginsResponse } from '../../main/common/contract/index.js';
import { connectSystemBus } from '../../main/common/dbus/calls.js';
import { generatePlugin } from '../../main/common/generated/generate.js';
import { permissionsOf } from '../../main/common/generated/spec.js';
import type { PluginContext } from '../../main/sdk/index.js';
import { IsolatedPlugin } from '../../main/service/isolation/isolated-plugin.js';
import { PermissionedBus } from '../../main/service/plugins/bus-facade.js';
import { stateRoot } from '../../main/service/plugins/discover.js';
import { ROOT, TestSandbox, writeDocument } from '../support/sandbox.js';

// Generated plugins (timedate1, locale1 from the installation's plugins/generated/) and a hostile
// community plugin, against a real core on the development host's bus with the real
// systemd-timedated and systemd-localed (D-Bus activated, /etc overlaid). Read back with busctl and
// the daemons' own files in their overlays; the host's /etc/localtime is checked unchanged.
let sb: TestSandbox;
let docs: string;
let pluginPath: string;

const HOSTILE = `import { readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';

const attacks = {
  async whoami() {
    const status = readFileSync('/proc/self/status', 'utf8');
    const cap = /CapEff:\\s*(\\S+)/.exec(status)?.[1];
    writeFileSync(join(process.env.OP_DBUS_PLUGIN_STATE_DIR, 'mine'), 'ok');
    return 'uid=' + process.getuid() + ' cap=' + cap + ' ifaces=' + Object.keys(networkInterfaces()).join(',');
  },
  async 'other-bus-name'(ctx) {
    await ctx.bus.call({ destination: 'org.freedesktop.timedate1', path: '/org/freedesktop/timedate1', interface: 'org.freedesktop.timedate1', member: 'SetTimezone', signature: 'sb', body: ['Asia/Tokyo', false] });
    return 'called timedate1';
  },
  async 'method-outside'(ctx) {
    await ctx.bus.call({ destination: 'org.freedesktop.hostname1', path: '/org/freedesktop/hostname1', interface: 'org.freedesktop.hostname1', member: 'SetStaticHostname', signature: 'sb', body: ['pwned', false] });
    return 'renamed the host';
  },
  async network() {
    const others = Object.keys(networkInterfaces()).filter((n) => n !== 'lo');
    if (others.length > 0) return 'sees ' + others.join(',');
    await new Promise((resolve, reject) => {
      const s = connect({ host: '10.200.0.1', port: 80 });
      s.on('connect', () => resolve(undefined));
      s.on('error', reject);
    });
    return 'connected';
  },
  async 'write-outside'(ctx) {
    writeFileSync(join(ctx.config.own_dir, 'index.mjs'), 'export default {}');
    return 'rewrote its own code';
  },
  async 'write-etc'() {
    writeFileSync('/etc/opdbus-hostile', 'x');
    return 'wrote /etc';
  },
  async 'read-key'(ctx) {
    return 'key: ' + readFileSync(ctx.config.key_file, 'utf8').length;
  },
  async loop() {
    for (;;) {}
  },
  async crash() {
    process.exit(9);
  },
  async flood() {
    const mb = 'x'.repeat(1024 * 1024);
    for (let i = 0; i < 100; i++) process.stdout.write(mb);
    await new Promise((r) => setTimeout(r, 30000));
    return 'flooded';
  },
};

export default {
  schema: { type: 'object', properties: { attack: { type: 'string' } }, additionalProperties: false },
  plugin: {
    available: async () => ({ available: true }),
    query: async () => ({}),
    async diff(_current, desired, ctx) {
      const what = await attacks[desired.attack](ctx);
      return { resources: [{ id: String(what), action: 'noop', changes: [] }] };
    },
    checkpoint: async () => ({}),
    apply: async () => ({ changed: 0 }),
    verify: async () => ({ drift: [] }),
    rollback: async () => undefined,
  },
};
`;

interface AuditRow {
  kind: string;
  plugin: string | null;
  summary: string;
}
const audit = (): AuditRow[] =>
  (JSON.parse(sb.cli(['audit', 'list', '--limit', '100', '--json']).stdout) as { entries: AuditRow[] })
    .entries;
const plan = (
  plugins: Record<string, unknown>,
  name: string,
): { code: number | null; stdout: string; stderr: string } =>
  sb.cli(['plan', writeDocument(docs, `${name}.json`, JSON.stringify({ version: 1, plugins })), '--json']);
const timedate = (prop: string): string =>
  sb.busctl(
    'get-property',
    'org.freedesktop.timedate1',
    '/org/freedesktop/timedate1',
    'org.freedesktop.timedate1',
    prop,
  );
const rssKb = (pid: number): number =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

beforeAll(async () => {
  sb = await TestSandbox.start();
  const base = join(sb.dir, '..');
  docs = join(base, 'docs');
  pluginPath = join(base, 'plugins');
  const dir = join(pluginPath, 'hostile');
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  writeFileSync(join(dir, 'index.mjs'), HOSTILE);
  writeFileSync(
    join(dir, 'plugin.toml'),
    `[plugin]
name = "hostile"
version = "0.0.1"
entry = "index.mjs"

[[permissions.dbus]]
name = "org.freedesktop.hostname1"
interface = "org.freedesktop.hostname1"
properties = "read"

[limits]
deadline_s = 4

[config]
own_dir = "${dir}"
key_file = "${join(sb.dataDir, 'keys', 'audit-checkpoint.key')}"
`,
  );
  await sb.restartCore({ OP_DBUS_PLUGIN_PATH: pluginPath });
}, 120_000);
afterAll(async () => {
  await sb?.stop();
});

describe('plugin list', () => {
  it('says source, isolation, permissions, availability and writability; hostname1 is listed, not loaded, and why', () => {
    const r = sb.cli(['plugin', 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const byName = new Map((JSON.parse(r.stdout) as PluginsResponse).plugins.map((p) => [p.name, p]));
    expect(byName.get('hostname')).toMatchObject({
      source: 'built-in',
      isolation: 'in-process',
      available: true,
      writable: true,
    });
    expect(byName.get('timedate1')).toMatchObject({
      source: 'generated',
      isolation: 'out-of-process',
      available: true,
      writable: true,
      service: 'org.freedesktop.timedate1',
    });
    expect(byName.get('timedate1')?.permissions.dbus).toEqual([
      expect.objectContaining({
        name: 'org.freedesktop.timedate1',
        methods: ['SetTimezone', 'SetLocalRTC'],
        properties: 'read',
      }),
    ]);
    expect(byName.get('locale1')).toMatchObject({ source: 'generated', available: true, writable: true });
    expect(byName.get('hostname1')).toMatchObject({
      source: 'generated',
      loaded: false,
      available: false,
      why_not: 'not loaded: the built-in plugin hostname owns org.freedesktop.hostname1',
    });
    expect(byName.get('hostile')).toMatchObject({
      source: 'community',
      isolation: 'out-of-process',
      available: true,
    });
    const text = sb.cli(['plugin', 'show', 'timedate1']).stdout;
    expect(text).toMatch(/timedate1 0\.1\.0 \(generated, out-of-process, writable\)/);
  });
});

describe('generated plugins against the real timedated and localed', () => {
  it('sets the time zone through timedate1 and its mapping: busctl reads it from timedated, /etc/localtime in its overlay', () => {
    const hostZone = readlinkSync('/etc/localtime');
    const r = sb.cli([
      'apply',
      '--yes',
      writeDocument(
        docs,
        'tz.json',
        JSON.stringify({ version: 1, plugins: { timedate1: { timezone: 'Pacific/Auckland' } } }),
      ),
    ]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(timedate('Timezone')).toBe('s "Pacific/Auckland"');
    const etc = sb.env['OP_DBUS_SANDBOX_TIMEDATED_ETC'] as string;
    expect(readlinkSync(join(etc, 'localtime'))).toMatch(/zoneinfo\/Pacific\/Auckland$/);
    expect(readlinkSync('/etc/localtime')).toBe(hostZone);
    const calls = audit().filter((e) => e.kind === 'plugin' && e.plugin === 'timedate1');
    expect(calls.map((e) => e.summary).join('\n')).toMatch(
      /plugin timedate1 \(isolated\) called org\.freedesktop\.timedate1\.SetTimezone/,
    );
  });

  it("sets the locale through locale1 (a set: order does not matter; localed drops an LC_* equal to LANG, so C differs), read back with busctl and from localed's file", () => {
    const r = sb.cli([
      'apply',
      '--yes',
      writeDocument(
        docs,
        'locale.json',
        JSON.stringify({ version: 1, plugins: { locale1: { locale: ['LC_TIME=C', 'LANG=C.UTF-8'] } } }),
      ),
    ]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const got = sb.busctl(
      'get-property',
      'org.freedesktop.locale1',
      '/org/freedesktop/locale1',
      'org.freedesktop.locale1',
      'Locale',
    );
    expect(got).toMatch(/^as 2 /);
    expect(got).toContain('"LANG=C.UTF-8"');
    expect(got).toContain('"LC_TIME=C"');
    const etc = sb.env['OP_DBUS_SANDBOX_LOCALED_ETC'] as string;
    const file = [join(etc, 'locale.conf'), join(etc, 'default', 'locale')].find((f) => existsSync(f));
    expect(file !== undefined && readFileSync(file, 'utf8')).toMatch(/LC_TIME=C$/m);
    // the same set in another order is in sync
    const again = plan({ locale1: { locale: ['LANG=C.UTF-8', 'LC_TIME=C'] } }, 'locale-again');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).not.toMatch(/"action": "modify"/);
  });

  it('refuses a change the mapping does not allow (ntp has diff_strategy none), before any call', () => {
    // the opposite of what timedated reports (with the host's systemd1 stand-in it can answer NTP;
    // without one it cannot, and any desired value is a change): a change the mapping cannot make
    let current = false;
    try {
      current = /true/.test(timedate('NTP'));
    } catch {
      // unreadable: absent from the state
    }
    const r = plan({ timedate1: { ntp: !current } }, 'ntp');
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/timedate1 is read-only for ntp/);
  });
});

describe('the shipped hostname1 mapping (not loaded by the core: the built-in owns the service)', () => {
  it('sets the pretty hostname through the generated plugin in its isolated child, read back with busctl', async () => {
    const dir = join(ROOT, 'plugins/generated/hostname1');
    const r = generatePlugin({
      xml: readFileSync(join(dir, 'introspection.xml'), 'utf8'),
      file: join(dir, 'introspection.xml'),
      mapping: {
        text: readFileSync(join(dir, 'semantic-mapping.toml'), 'utf8'),
        file: join(dir, 'semantic-mapping.toml'),
      },
    });
    if (!r.ok) throw new Error(r.error.message);
    const bus = await connectSystemBus();
    const isolated = new IsolatedPlugin({
      name: 'hostname1',
      start: { kind: 'generated', spec: r.plugin.spec },
      readable: [],
      stateDir: join(sb.dir, '..', 'hostname1-state'),
      hidden: [sb.dataDir],
    });
    const refused: string[] = [];
    const ctx = (): PluginContext => ({
      plugin: 'hostname1',
      config: {},
      bus: new PermissionedBus(
        'hostname1',
        permissionsOf(r.plugin.spec),
        () => bus,
        (x) => refused.push(x.reason),
      ),
      signal: new AbortController().signal,
      deadline: Date.now() + 20_000,
      after: {},
      log: { info: () => undefined, warn: () => undefined },
      progress: () => undefined,
    });
    try {
      const p = isolated.impl;
      const current = (await p.query(ctx())) as Record<string, unknown>;
      const desired = { pretty_hostname: 'Generated Plugin Host' };
      const diff = await p.diff(current, desired, ctx());
      expect(diff.resources).toMatchObject([{ id: 'pretty_hostname', action: 'modify' }]);
      expect(await p.apply(diff, desired, ctx())).toEqual({ changed: 1 });
      expect(sb.hostnameProperty('PrettyHostname')).toBe('Generated Plugin Host');
      expect(await p.verify(desired, ctx())).toEqual({ drift: [] });
      // protected_services: a desired value naming "localhost" is refused before any call
      await expect(p.diff(current, { static_hostname: 'localhost' }, ctx())).rejects.toThrow(
        /protected_services/,
      );
      expect(refused).toEqual([]);
    } finally {
      isolated.close();
      bus.disconnect();
    }
  });
});

describe('a hostile community plugin, isolated', () => {
  const attack = (name: string): { code: number | null; out: string } => {
    const r = plan({ hostile: { attack: name } }, `attack-${name}`);
    return { code: r.code, out: r.stdout + r.stderr };
  };
  const audited = (re: RegExp): boolean => audit().some((e) => e.plugin === 'hostile' && re.test(e.summary));

  it('runs as nobody, without capabilities, seeing only lo, writing only its own directory', () => {
    const r = attack('whoami');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/uid=65534 cap=0000000000000000 ifaces=lo"/);
    expect(readFileSync(join(stateRoot(sb.dataDir), 'hostile', 'mine'), 'utf8')).toBe('ok');
  });

  it('cannot call another bus name, nor a method outside its permissions: refused and audited', () => {
    const before = timedate('Timezone');
    const other = attack('other-bus-name');
    expect(other.code).not.toBe(0);
    expect(other.out).toMatch(/org\.freedesktop\.timedate1 is not a bus name of its \[permissions\]/);
    expect(timedate('Timezone')).toBe(before);
    const outside = attack('method-outside');
    expect(outside.code).not.toBe(0);
    expect(outside.out).toMatch(/method SetStaticHostname is not among the methods/);
    expect(sb.hostnameProperty('StaticHostname')).not.toBe('pwned');
    expect(audited(/refused a bus call of plugin hostile: org\.freedesktop\.timedate1\.SetTimezone/)).toBe(
      true,
    );
    expect(
      audited(/refused a bus call of plugin hostile: org\.freedesktop\.hostname1\.SetStaticHostname/),
    ).toBe(true);
  });

  it("has no network, cannot write its code, /etc, or read the core's key: each refused and audited", () => {
    const net = attack('network');
    expect(net.code).not.toBe(0);
    expect(net.out).toMatch(/ENETUNREACH/);
    const code = attack('write-outside');
    expect(code.out).toMatch(/EROFS|EACCES/);
    expect(readFileSync(join(pluginPath, 'hostile', 'index.mjs'), 'utf8')).toBe(HOSTILE);
    const etc = attack('write-etc');
    expect(etc.out).toMatch(/EROFS|EACCES/);
    expect(existsSync('/etc/opdbus-hostile')).toBe(false);
    const key = attack('read-key');
    expect(key.code).not.toBe(0);
    expect(key.out).toMatch(/ENOENT|EACCES/);
    expect(audited(/hostile \(isolated\) diff: .*ENETUNREACH/)).toBe(true);
    expect(audited(/hostile \(isolated\) diff: .*audit-checkpoint\.key/)).toBe(true);
  });

  it('is killed at its deadline when it loops, and works again after', () => {
    const started = Date.now();
    const r = attack('loop');
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/within its deadline of 4 s/);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(audited(/hostile \(isolated\) diff: .*deadline/)).toBe(true);
    expect(attack('whoami').code).toBe(0);
  });

  it('crashing or writing 100 MB of output does not harm the core', () => {
    const core = sb.corePid() as number;
    const crash = attack('crash');
    expect(crash.code).not.toBe(0);
    expect(crash.out).toMatch(/exited with code 9/);
    const rss = rssKb(core);
    const flood = attack('flood');
    expect(flood.code).not.toBe(0);
    expect(flood.out).toMatch(/more than 16777216 bytes of output/);
    expect(sb.corePid()).toBe(core);
    expect(rssKb(core) - rss).toBeLessThan(64 * 1024);
    expect(audited(/exited with code 9/)).toBe(true);
    expect(audited(/more than 16777216 bytes of output/)).toBe(true);
    expect(sb.cli(['plugin', 'list']).code).toBe(0);
  });
});
