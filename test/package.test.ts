import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sandboxUp, sandboxWipe } from '../main/devhost/host.js';
import { ROOT } from './support/sandbox.js';

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
});
