import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sandboxUp, sandboxWipe } from '../main/devhost/host.js';
import { ROOT, waitFor } from './support/sandbox.js';

// The core packaged as a Node single-executable application with its native addon beside it, run
// with an environment that has no Node on PATH: what a host with an older (or no) distribution Node gets.
const out = join(ROOT, 'dist/package/op-dbus');
const binary = join(out, 'op-dbus');
let dir: string;
let bare: string[];

beforeAll(async () => {
  execFileSync(process.execPath, [join(ROOT, 'build/package/package-core.mjs'), out], {
    stdio: 'pipe',
    timeout: 120_000,
  });
  const parent = mkdtempSync(join(tmpdir(), 'opdbus-sea-'));
  chmodSync(parent, 0o755);
  dir = join(parent, 'sb');
  const env = {
    DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${dir}/system_bus_socket`,
    OP_DBUS_DATA_DIR: `${dir}/data`,
    // without HOME in the environment the witness falls back to the passwd entry's home (/root)
    XDG_STATE_HOME: `${parent}/state`,
  };
  // env -i: nothing of this test's environment (and no PATH with node) reaches the packaged core
  bare = ['env', '-i', 'PATH=/usr/sbin:/sbin', ...Object.entries(env).map(([k, v]) => `${k}=${v}`)];
  await sandboxUp({ dir, coreCommand: [...bare, binary, 'core'] });
}, 180_000);
afterAll(async () => {
  if (dir === undefined) return;
  await sandboxWipe(dir);
  rmSync(join(dir, '..'), { recursive: true, force: true });
});

describe('the single-executable package', () => {
  it('the binary is Node with our bundle injected, and loads better-sqlite3 from beside it', () => {
    const r = spawnSync(bare[0] as string, [...bare.slice(1), binary, '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: op-dbus/);
    expect(spawnSync('sh', ['-c', `PATH=/usr/sbin:/sbin command -v node`]).status).not.toBe(0);
  });

  it('runs the core and the CLI: plan, apply, audit verify', () => {
    const run = (...args: string[]) =>
      spawnSync(bare[0] as string, [...bare.slice(1), binary, ...args], { encoding: 'utf8' });
    const doc = join(dir, '..', 'sea.json');
    writeFileSync(doc, JSON.stringify({ version: 1, plugins: { hostname: { location: 'Packaged' } } }));
    expect(run('plan', doc).status).toBe(2);
    const apply = run('apply', doc, '--yes', '--json');
    expect(apply.stderr).not.toMatch(/error/i);
    expect(apply.status).toBe(0);
    expect(readFileSync(join(dir, 'etc-upper/machine-info'), 'utf8')).toMatch(/^LOCATION=Packaged$/m);
    expect(run('audit', 'verify').status).toBe(0);
    expect(readFileSync(join(dir, 'core.log'), 'utf8')).toMatch(/op-dbus core ready/);
    // the witness kept its record in the test's state dir, not in the home of the passwd entry
    expect(readdirSync(join(dir, '..', 'state/op-dbus/witness'))).toHaveLength(1);
  });

  it("runs the audit log's worker threads and the native walk from beside the binary, as the npm build does", () => {
    const run = (...args: string[]) =>
      spawnSync(bare[0] as string, [...bare.slice(1), binary, ...args], { encoding: 'utf8' });
    // An apply's appends go through the writer thread (one that fails to start hands over to the core's
    // own thread, and stats then says "in-thread"); verify runs in its worker.
    const doc = join(dir, '..', 'sea2.json');
    writeFileSync(doc, JSON.stringify({ version: 1, plugins: { hostname: { location: 'Twice' } } }));
    expect(run('apply', doc, '--yes').status).toBe(0);
    const stats = run('stats', '--json');
    expect(stats.status).toBe(0);
    expect((JSON.parse(stats.stdout) as { audit?: unknown }).audit).toEqual({
      writer: 'thread',
      verify_workers: true,
      native_walk: true,
    });
    expect(JSON.parse(run('audit', 'verify', '--json').stdout)).toMatchObject({ ok: true });
  });

  it('build/install.sh stages every file where the activation file, unit and policy expect it', () => {
    const stage = join(dir, '..', 'stage');
    execFileSync(join(ROOT, 'build/install.sh'), [out], {
      env: { ...process.env, DESTDIR: stage },
      stdio: 'pipe',
    });
    for (const f of [
      'usr/lib/op-dbus/op-dbus',
      'usr/lib/op-dbus/op-dbus-core',
      'usr/lib/op-dbus/node_modules/better-sqlite3/build/Release/better_sqlite3.node',
      'usr/lib/op-dbus/native/build/Release/opdbus_native.node',
      'usr/lib/op-dbus/append-worker.js',
      'usr/lib/op-dbus/verify-log-worker.js',
      'usr/lib/op-dbus/verify-worker.js',
      'usr/lib/op-dbus/package.json',
      'usr/lib/op-dbus/plugins/hostname/index.js',
      'usr/lib/op-dbus/plugins/hostname/plugin.toml',
      'usr/share/dbus-1/system.d/org.opdbus.Manager1.conf',
      'usr/share/dbus-1/system-services/org.opdbus.Manager1.service',
      'usr/share/polkit-1/actions/org.opdbus.policy',
      'usr/lib/systemd/system/op-dbus.service',
    ]) {
      expect(existsSync(join(stage, f)), f).toBe(true);
    }
    // the paths the system files name are the ones installed
    const unit = readFileSync(join(stage, 'usr/lib/systemd/system/op-dbus.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\/usr\/lib\/op-dbus\/op-dbus core /m);
    expect(unit).toMatch(
      /^ExecStartPost=-\/usr\/bin\/env OP_DBUS_WITNESS=off \/usr\/lib\/op-dbus\/op-dbus converge$/m,
    );
    const policy = readFileSync(join(stage, 'usr/share/polkit-1/actions/org.opdbus.policy'), 'utf8');
    expect(policy).toContain(
      '<annotate key="org.freedesktop.policykit.exec.path">/usr/lib/op-dbus/op-dbus-core</annotate>',
    );
    expect(readFileSync(join(stage, 'usr/lib/op-dbus/op-dbus-core'), 'utf8')).toContain(
      'exec /usr/lib/op-dbus/op-dbus core --private-bus',
    );
  });

  it('builds a Debian package that dpkg installs into a scratch root, whose installed core serves on a bus', async () => {
    const scratch = join(dir, '..', 'deb');
    const deb = join(scratch, 'op-dbus.deb');
    const root = join(scratch, 'root');
    const admindir = join(root, 'var/lib/dpkg');
    mkdirSync(join(admindir, 'updates'), { recursive: true });
    mkdirSync(join(admindir, 'info'), { recursive: true });
    writeFileSync(join(admindir, 'status'), '');
    execFileSync(process.execPath, [join(ROOT, 'build/package/deb.mjs'), out, deb], {
      env: { ...process.env, DEB_COMPRESSION: 'none' },
      stdio: 'pipe',
      timeout: 180_000,
    });
    // the scratch root's database lists none of this machine's packages: dbus and polkitd are depended on, not there
    execFileSync('dpkg', ['--root', root, '--force-depends', '--force-script-chrootless', '-i', deb], {
      stdio: 'pipe',
    });

    // dpkg's own reader of that database, never ours
    const query = (...args: string[]): string =>
      execFileSync('dpkg-query', ['--admindir', admindir, ...args], { encoding: 'utf8' });
    expect(query('-W', '-f', '${Package} ${Version} ${Status}\n', 'op-dbus')).toBe(
      `op-dbus ${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string} install ok installed\n`,
    );
    const files = query('-L', 'op-dbus').split('\n');
    for (const f of [
      '/usr/lib/op-dbus/op-dbus',
      '/usr/lib/op-dbus/plugins/hostname/plugin.toml',
      '/usr/share/dbus-1/system.d/org.opdbus.Manager1.conf',
      '/usr/share/dbus-1/system-services/org.opdbus.Manager1.service',
      '/usr/share/polkit-1/actions/org.opdbus.policy',
      '/usr/lib/systemd/system/op-dbus.service',
    ]) {
      expect(files, f).toContain(f);
    }

    // a bus that reads the installed policy, and the installed core on it (no polkitd: root only)
    const socket = join(scratch, 'bus.sock');
    writeFileSync(
      join(scratch, 'bus.conf'),
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path=${socket}</listen><auth>EXTERNAL</auth>
<policy context="default">
  <allow user="*"/><deny own="*"/><deny send_type="method_call"/><allow send_type="signal"/>
  <allow send_requested_reply="true" send_type="method_return"/><allow send_requested_reply="true" send_type="error"/>
  <allow receive_type="method_call"/><allow receive_type="method_return"/><allow receive_type="error"/><allow receive_type="signal"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
  <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
</policy>
<includedir>${root}/usr/share/dbus-1/system.d</includedir></busconfig>\n`,
    );
    const busPid = Number(
      execFileSync('dbus-daemon', [`--config-file=${join(scratch, 'bus.conf')}`, '--fork', '--print-pid=1'], {
        encoding: 'utf8',
      }).trim(),
    );
    const address = `unix:path=${socket}`;
    let core: ReturnType<typeof spawn> | undefined;
    try {
      core = spawn(join(root, 'usr/lib/op-dbus/op-dbus'), ['core', '--data-dir', join(scratch, 'data')], {
        env: {
          PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
          DBUS_SYSTEM_BUS_ADDRESS: address,
          XDG_STATE_HOME: join(scratch, 'state'),
        },
        stdio: 'ignore',
      });
      const pid = core.pid;
      const busctl = (...args: string[]): string =>
        execFileSync('busctl', [`--address=${address}`, ...args], { encoding: 'utf8', timeout: 10_000 });
      await waitFor('the installed core on its bus', () => {
        try {
          return busctl('status', 'org.opdbus.Manager1').includes(`PID=${pid}`);
        } catch {
          return false;
        }
      });
      // the installed core's own plugin, found beside its installed binary
      const reply = busctl(
        'call',
        'org.opdbus.Manager1',
        '/org/opdbus/Manager1',
        'org.opdbus.Manager1',
        'Plugins',
        's',
        '{}',
      );
      expect(reply).toMatch(/hostname/);
    } finally {
      if (core?.exitCode === null) {
        const exited = new Promise((r) => core?.once('exit', r));
        core.kill('SIGTERM');
        await exited;
      }
      process.kill(busPid, 'SIGTERM');
    }

    execFileSync('dpkg', ['--root', root, '--force-script-chrootless', '-r', 'op-dbus'], { stdio: 'pipe' });
    // removed: dpkg no longer lists it as installed (with no conffiles, it forgets the package entirely)
    const after = spawnSync('dpkg-query', ['--admindir', admindir, '-W', '-f', '${Status}', 'op-dbus'], {
      encoding: 'utf8',
    });
    expect(after.status === 0 ? after.stdout : after.stderr).toMatch(
      /deinstall|not-installed|no packages found/,
    );
    expect(existsSync(join(root, 'usr/lib/op-dbus/op-dbus'))).toBe(false);
  }, 300_000);
});
