import { execFile, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import dbus from 'dbus-next';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpError } from '../common/contract/index.js';
import {
  corePid,
  exportLines,
  polkitRulesDir,
  restartCore,
  sandboxDown,
  sandboxEnv,
  sandboxStatus,
  sandboxUp,
  sandboxWipe,
} from './host.js';
import type { HostStatus, SandboxEnv } from './host.js';

// Real processes throughout: dbus-daemon, polkitd, systemd-hostnamed (activated), and a stand-in core.
// `sandbox status` and `env` run as the CLI (dist/, so `npm run build` first) in separate processes.

const execFileAsync = promisify(execFile);
const HOSTNAME1 = [
  'org.freedesktop.hostname1',
  '/org/freedesktop/hostname1',
  'org.freedesktop.hostname1',
] as const;

let root = '';
let dir = '';
let coreScript = '';
let env: SandboxEnv | undefined;

function sandbox(): SandboxEnv {
  if (env === undefined) throw new Error('sandboxUp did not succeed');
  return env;
}

/** busctl against the sandbox bus only. */
async function busctl(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('busctl', ['--system', ...args], {
    env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: sandbox().DBUS_SYSTEM_BUS_ADDRESS },
    timeout: 30_000,
  });
  return stdout.trim();
}

/** PIDs of processes whose mount namespace holds this sandbox's /etc overlay. */
function overlayPids(sandboxDir: string): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/mountinfo`, 'utf8').includes(`upperdir=${sandboxDir}/etc-upper`);
      } catch {
        return false;
      }
    });
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

const CLI = resolve(import.meta.dirname, '../../dist/main/op-dbus.js');

/** `op-dbus sandbox ...` as a separate process, as an admin runs it. */
function sandboxCli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'sandbox', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `op-dbus sandbox status --json`: its exit code and each component by name. */
function statusByCli(sandboxDir: string): {
  code: number | null;
  byName: Map<string, HostStatus['components'][number]>;
} {
  const r = sandboxCli('status', '--json', '--dir', sandboxDir);
  const status = JSON.parse(r.stdout) as HostStatus;
  expect(status.dir).toBe(sandboxDir);
  return { code: r.code, byName: new Map(status.components.map((c) => [c.name, c])) };
}

/** The PID that owns a bus name, as busctl (another D-Bus client) reports it. */
async function busctlPid(name: string): Promise<number> {
  const m = /^PID=(\d+)$/m.exec(await busctl('status', name));
  if (m?.[1] === undefined) throw new Error(`busctl status ${name}: no PID`);
  return Number(m[1]);
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

function fileOrNull(path: string): string | null {
  return existsSync(path) ? readFileSync(path, 'utf8') : null;
}

async function nameHasOwner(name: string): Promise<boolean> {
  const bus = dbus.sessionBus({ busAddress: sandbox().DBUS_SYSTEM_BUS_ADDRESS });
  bus.on('error', () => undefined);
  try {
    const reply = await bus.call(
      new dbus.Message({
        destination: 'org.freedesktop.DBus',
        path: '/org/freedesktop/DBus',
        interface: 'org.freedesktop.DBus',
        member: 'NameHasOwner',
        signature: 's',
        body: [name],
      }),
    );
    return reply?.body[0] === true;
  } finally {
    bus.disconnect();
  }
}

const realMachineInfo = fileOrNull('/etc/machine-info');
const realHostnameFile = fileOrNull('/etc/hostname');
const realHostname = hostname();

describe('sandbox host (real dbus-daemon, polkitd, systemd-hostnamed)', () => {
  beforeAll(async () => {
    root = mkdtempSync('/tmp/op-dbus-sandbox-test-');
    chmodSync(root, 0o755);
    dir = join(root, 'sb');
    // A stand-in core: owns org.opdbus.Manager1 and stays; exit 1 with the D-Bus error when refused.
    const dbusNext = createRequire(import.meta.url).resolve('dbus-next');
    coreScript = join(root, 'own-name.cjs');
    writeFileSync(
      coreScript,
      `const dbus = require(${JSON.stringify(dbusNext)});
const bus = dbus.sessionBus({ busAddress: process.env.DBUS_SYSTEM_BUS_ADDRESS });
bus.on('error', (e) => { console.error('bus error:', e.message); process.exit(3); });
bus.requestName('org.opdbus.Manager1', dbus.NameFlag.DO_NOT_QUEUE).then(
  (reply) => { console.log('requestName reply', reply); if (reply !== dbus.RequestNameReply.PRIMARY_OWNER) process.exit(2); },
  (e) => { console.error('refused:', e.type ?? e.message); process.exit(1); },
);
setInterval(() => {}, 1 << 30);
`,
      { mode: 0o644 },
    );
    const t0 = performance.now();
    env = await sandboxUp({ dir, coreCommand: [process.execPath, coreScript] });
    console.info(`sandboxUp with core: ${Math.round(performance.now() - t0)} ms`);
  }, 60_000);

  afterAll(async () => {
    try {
      await sandboxWipe(dir);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 60_000);

  it('starts a bus with polkitd on it and the core owning its name', async () => {
    expect(sandbox().DBUS_SYSTEM_BUS_ADDRESS).toBe(`unix:path=${dir}/system_bus_socket`);
    expect(sandbox().OP_DBUS_DATA_DIR).toBe(`${dir}/data`);
    expect(sandboxEnv(dir)).toEqual(sandbox());
    expect(await nameHasOwner('org.freedesktop.DBus')).toBe(true);
    expect(await nameHasOwner('org.freedesktop.PolicyKit1')).toBe(true);
    expect(await nameHasOwner('org.opdbus.Manager1')).toBe(true);
    expect(corePid(dir)).toBeTypeOf('number');
  });

  it('activates hostnamed through the bus', async () => {
    const t0 = performance.now();
    const out = await busctl('get-property', ...HOSTNAME1, 'Hostname');
    console.info(`hostnamed activation + first property read: ${Math.round(performance.now() - t0)} ms`);
    expect(out).toMatch(/^s ".+"$/);
    const pids = overlayPids(dir);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) {
      expect(readlinkSync(`/proc/${pid}/ns/uts`)).not.toBe(readlinkSync('/proc/self/ns/uts'));
      expect(readlinkSync(`/proc/${pid}/ns/mnt`)).not.toBe(readlinkSync('/proc/self/ns/mnt'));
    }
  }, 40_000);

  it('lists each component in `sandbox status` with the PID the bus and /proc know it by', async () => {
    await busctl('get-property', ...HOSTNAME1, 'Hostname'); // hostnamed runs now, so it has a PID
    const { code, byName } = statusByCli(dir);
    expect([...byName.keys()]).toEqual([
      'bus',
      'polkitd',
      'hostnamed',
      'timedated',
      'localed',
      'systemd1',
      'packagekit',
      'netns',
      'ovs',
      'lxc',
      'wireguard',
      'core',
    ]);
    for (const c of byName.values()) expect(c, c.name).toMatchObject({ healthy: true });
    expect(code).toBe(0);

    const bus = byName.get('bus')?.pid as number;
    expect(readFileSync(`/proc/${bus}/cmdline`, 'utf8').split('\0')).toContain(
      `--config-file=${dir}/bus.conf`,
    );
    expect(byName.get('polkitd')?.pid).toBe(await busctlPid('org.freedesktop.PolicyKit1'));
    expect(byName.get('core')?.pid).toBe(await busctlPid('org.opdbus.Manager1'));
    expect(byName.get('hostnamed')?.pid).toBe(await busctlPid('org.freedesktop.hostname1'));
    expect(overlayPids(dir)).toContain(byName.get('hostnamed')?.pid);

    // the core runs in the host's network namespace, and `sandbox exec` runs a command there too
    const ns = sandbox().OP_DBUS_NETNS as string;
    const nsInode = `net:[${statSync(`/run/netns/${ns}`).ino}]`;
    expect(nsInode).not.toBe(readlinkSync('/proc/self/ns/net'));
    expect(readlinkSync(`/proc/${byName.get('core')?.pid}/ns/net`)).toBe(nsInode);
    const exec = spawnSync(
      process.execPath,
      [CLI, 'sandbox', 'exec', '--dir', dir, '--', 'readlink', '/proc/self/ns/net'],
      {
        encoding: 'utf8',
      },
    );
    expect({ code: exec.status, out: exec.stdout.trim() }).toEqual({ code: 0, out: nsInode });
  }, 40_000);

  it("exports each component's variables, and each names what that component really uses", async () => {
    const r = spawnSync(
      'sh',
      [
        '-c',
        'eval "$("$NODE" "$CLI" sandbox env --dir "$D")" && printf "%s\\n" "$DBUS_SYSTEM_BUS_ADDRESS" "$OP_DBUS_SANDBOX" "$OP_DBUS_DATA_DIR" "$OP_DBUS_SANDBOX_POLKIT_RULES" "$OP_DBUS_SANDBOX_HOSTNAMED_ETC"',
      ],
      { env: { PATH: process.env['PATH'], NODE: process.execPath, CLI, D: dir }, encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    const [address, sandboxDir, dataDir, rules, etc] = r.stdout.trimEnd().split('\n');
    expect({ address, sandboxDir, dataDir }).toEqual({
      address: sandbox().DBUS_SYSTEM_BUS_ADDRESS,
      sandboxDir: dir,
      dataDir: sandbox().OP_DBUS_DATA_DIR,
    });
    expect(sandbox()).toMatchObject({
      OP_DBUS_SANDBOX_POLKIT_RULES: rules,
      OP_DBUS_SANDBOX_HOSTNAMED_ETC: etc,
    });

    // polkitd's /etc/polkit-1/rules.d (in its own mount namespace) is the exported directory
    const polkitd = await busctlPid('org.freedesktop.PolicyKit1');
    const seen = statSync(`/proc/${polkitd}/root/etc/polkit-1/rules.d`);
    const exported = statSync(rules as string);
    expect([seen.dev, seen.ino]).toEqual([exported.dev, exported.ino]);
    expect(rules).toBe(polkitRulesDir(dir));

    // what hostnamed writes to its /etc lands in the exported directory
    await busctl('call', ...HOSTNAME1, 'SetPrettyHostname', 'sb', 'Exported Etc', 'false');
    const hostnamed = await busctlPid('org.freedesktop.hostname1');
    const inItsEtc = readFileSync(`/proc/${hostnamed}/root/etc/machine-info`, 'utf8');
    expect(inItsEtc).toMatch(/PRETTY_HOSTNAME=["']?Exported Etc/);
    expect(readFileSync(join(etc as string, 'machine-info'), 'utf8')).toBe(inItsEtc);
  }, 40_000);

  it('lets hostnamed write /etc only into the overlay, and never the real kernel hostname', async () => {
    await busctl('call', ...HOSTNAME1, 'SetPrettyHostname', 'sb', 'Sandbox Test', 'false');
    expect(readFileSync(join(dir, 'etc-upper', 'machine-info'), 'utf8')).toMatch(
      /PRETTY_HOSTNAME=["']?Sandbox Test/,
    );
    expect(fileOrNull('/etc/machine-info')).toBe(realMachineInfo);

    await busctl('call', ...HOSTNAME1, 'SetStaticHostname', 'sb', 'op-dbus-sandbox-test', 'false');
    expect(readFileSync(join(dir, 'etc-upper', 'hostname'), 'utf8').trim()).toBe('op-dbus-sandbox-test');
    expect(await busctl('get-property', ...HOSTNAME1, 'StaticHostname')).toBe('s "op-dbus-sandbox-test"');
    expect(fileOrNull('/etc/hostname')).toBe(realHostnameFile);
    expect(hostname()).toBe(realHostname);
    expect(readFileSync('/proc/sys/kernel/hostname', 'utf8').trim()).toBe(realHostname);
  }, 40_000);

  it('restarts hostnamed on demand after it exits, keeping what it wrote', async () => {
    const pids = overlayPids(dir);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, 'SIGTERM');
    expect(await until(() => pids.every((p) => !alive(p)), 10_000)).toBe(true);

    const t0 = performance.now();
    expect(await busctl('get-property', ...HOSTNAME1, 'PrettyHostname')).toBe('s "Sandbox Test"');
    console.info(`hostnamed re-activation + property read: ${Math.round(performance.now() - t0)} ms`);
    expect(await busctl('get-property', ...HOSTNAME1, 'StaticHostname')).toBe('s "op-dbus-sandbox-test"');
    const again = overlayPids(dir);
    expect(again.length).toBeGreaterThan(0);
    expect(again.some((p) => pids.includes(p))).toBe(false);
  }, 40_000);

  it('lets root own org.opdbus.Manager1 and refuses the name to other users', () => {
    const refused = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, coreScript], {
      env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: sandbox().DBUS_SYSTEM_BUS_ADDRESS },
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(refused.stderr).toContain('org.freedesktop.DBus.Error.AccessDenied');
    expect(refused.status).toBe(1);
    expect(readFileSync(join(dir, 'core.log'), 'utf8')).toContain('requestName reply 1');
  });

  it('replaces a killed core with a fresh process', async () => {
    const old = corePid(dir);
    expect(old).toBeTypeOf('number');
    process.kill(old as number, 'SIGKILL');
    expect(await until(() => !alive(old as number), 5_000)).toBe(true);
    expect(corePid(dir)).toBeUndefined();
    const core = (await sandboxStatus(dir)).components.find((c) => c.name === 'core');
    expect(core).toEqual({
      name: 'core',
      pid: null,
      healthy: false,
      detail: 'org.opdbus.Manager1 has no owner',
    });

    const fresh = await restartCore(dir, [process.execPath, coreScript], { OP_DBUS_TEST_MARK: '1' });
    expect(fresh).not.toBe(old);
    expect(corePid(dir)).toBe(fresh);
    expect(readFileSync(`/proc/${fresh}/environ`, 'utf8').split('\0')).toContain('OP_DBUS_TEST_MARK=1');
    expect(await nameHasOwner('org.opdbus.Manager1')).toBe(true);
  }, 30_000);

  it('prints export lines a shell can eval, whatever the values hold', () => {
    const run = (e: SandboxEnv, variable: keyof SandboxEnv): string => {
      const r = spawnSync('sh', ['-c', `eval "$X"; printf '%s' "$${variable}"`], {
        env: { PATH: process.env['PATH'], X: exportLines(e) },
        encoding: 'utf8',
      });
      return r.stdout;
    };
    expect(run(sandbox(), 'DBUS_SYSTEM_BUS_ADDRESS')).toBe(sandbox().DBUS_SYSTEM_BUS_ADDRESS);
    const odd = { ...sandbox(), OP_DBUS_DATA_DIR: `/tmp/it's "$HOME" \`id\` $(id)\nnext` };
    expect(run(odd, 'OP_DBUS_DATA_DIR')).toBe(odd.OP_DBUS_DATA_DIR);
    const echoed = spawnSync('sh', ['-c', 'eval "$X"; echo $DBUS_SYSTEM_BUS_ADDRESS'], {
      env: { PATH: process.env['PATH'], X: exportLines(sandbox()) },
      encoding: 'utf8',
    });
    expect(echoed.stdout.trim()).toBe(sandbox().DBUS_SYSTEM_BUS_ADDRESS);
  });

  it('refuses a second up on a running sandbox and leaves it running', async () => {
    await expect(sandboxUp({ dir })).rejects.toThrow(
      `sandbox already running at ${dir}; run \`op-dbus sandbox down\``,
    );
    expect(await nameHasOwner('org.freedesktop.PolicyKit1')).toBe(true);
    expect(sandboxEnv(dir)).toEqual(sandbox());
  });

  it('refuses paths that would need quoting, and directories that are not sandboxes', async () => {
    await expect(sandboxUp({ dir: join(root, 'has space') })).rejects.toBeInstanceOf(OpError);
    writeFileSync(join(root, 'keep-me'), 'x');
    await expect(sandboxDown(root)).rejects.toThrow('not a sandbox directory');
    expect(existsSync(join(root, 'keep-me'))).toBe(true);
  });

  it('fails up with the tail of core.log when the core exits, and tears down what it started', async () => {
    const failing = join(root, 'failing');
    const error = await sandboxUp({
      dir: failing,
      coreCommand: [process.execPath, '-e', 'console.error("core says boom"); process.exit(4)'],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).message).toContain('exit code 4');
    expect((error as OpError).message).toContain('core says boom');
    expect(existsSync(failing)).toBe(false);
    const leftovers = readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .filter((n) => {
        try {
          const cmdline = readFileSync(`/proc/${n}/cmdline`, 'utf8');
          return cmdline.includes(failing) || readFileSync(`/proc/${n}/environ`, 'utf8').includes(failing);
        } catch {
          return false;
        }
      });
    expect(leftovers).toEqual([]);
    expect(overlayPids(failing)).toEqual([]);
  }, 60_000);

  it('starts over in a directory left behind by a sandbox that died, keeping its data', async () => {
    const stale = join(root, 'stale');
    mkdirSync(join(stale, 'etc-upper'), { recursive: true });
    mkdirSync(join(stale, 'data'));
    writeFileSync(join(stale, '.op-dbus-sandbox'), '1\n');
    writeFileSync(join(stale, 'bus.pid'), '999999999\n');
    writeFileSync(join(stale, 'etc-upper', 'machine-info'), 'PRETTY_HOSTNAME=old\n');
    writeFileSync(join(stale, 'data', 'kept'), 'the host state\n');
    try {
      const staleEnv = await sandboxUp({ dir: stale });
      expect(sandboxEnv(stale)).toEqual(staleEnv);
      expect(readFileSync(join(stale, 'data', 'kept'), 'utf8')).toBe('the host state\n');
      expect(existsSync(join(stale, 'etc-upper', 'machine-info'))).toBe(false);
    } finally {
      await sandboxWipe(stale);
    }
    expect(existsSync(stale)).toBe(false);
  }, 60_000);

  it('reports a killed component unhealthy; down still stops the rest, keeps the data, and is idempotent', async () => {
    await busctl('get-property', ...HOSTNAME1, 'Hostname'); // make sure a hostnamed runs now
    const pids = {
      core: corePid(dir),
      polkitd: Number(readFileSync(join(dir, 'polkitd.pid'), 'utf8')),
      bus: Number(readFileSync(join(dir, 'bus.pid'), 'utf8')),
      hostnamed: overlayPids(dir),
    };
    expect(pids.core).toBeTypeOf('number');
    expect(pids.hostnamed.length).toBeGreaterThan(0);
    const ns = sandbox().OP_DBUS_NETNS as string;

    process.kill(pids.polkitd, 'SIGKILL');
    expect(await until(() => !alive(pids.polkitd), 5_000)).toBe(true);
    const { code, byName } = statusByCli(dir);
    expect(code).toBe(1);
    expect(byName.get('polkitd')).toEqual({
      name: 'polkitd',
      pid: null,
      healthy: false,
      detail: 'org.freedesktop.PolicyKit1 has no owner',
    });
    for (const name of ['bus', 'hostnamed', 'netns', 'ovs', 'core'])
      expect(byName.get(name)?.healthy, name).toBe(true);

    const t0 = performance.now();
    const down = sandboxCli('down', '--dir', dir);
    console.info(`sandbox down (CLI): ${Math.round(performance.now() - t0)} ms`);
    expect(down).toMatchObject({ code: 0, stdout: '', stderr: '' });

    for (const pid of [pids.core as number, pids.bus, ...pids.hostnamed]) expect(alive(pid)).toBe(false);
    expect(overlayPids(dir)).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual([
      '.op-dbus-sandbox',
      'data',
      'data-plugin-state',
      'keys',
      'ovs',
      'systemd-etc',
    ]);
    expect(existsSync(`/run/netns/${ns}`)).toBe(false);
    await expect(sandboxDown(dir)).resolves.toBeUndefined();
    expect(readdirSync(dir).sort()).toEqual([
      '.op-dbus-sandbox',
      'data',
      'data-plugin-state',
      'keys',
      'ovs',
      'systemd-etc',
    ]);
    expect(() => sandboxEnv(dir)).toThrow(OpError);
    expect(() => sandboxEnv(dir)).toThrow(`no running sandbox at ${dir}`);
    const after = statusByCli(dir);
    expect(after.code).toBe(1);
    expect([...after.byName.values()].map((c) => [c.name, c.pid, c.healthy])).toEqual([
      ['bus', null, false],
      ['polkitd', null, false],
      ['hostnamed', null, false],
      ['timedated', null, false],
      ['localed', null, false],
      ['systemd1', null, false],
      ['packagekit', null, false],
      ['netns', null, false],
      ['ovs', null, false],
      ['lxc', null, false],
      ['wireguard', null, false],
      ['core', null, false],
    ]);
  }, 60_000);
});
