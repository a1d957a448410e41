import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorPayload } from '../../main/common/contract/index.js';
import { polkitRulesDir } from '../../main/devhost/host.js';
import { CLI, TestSandbox, waitFor, writeDocument } from '../support/sandbox.js';

// The pkexec path: no core on the system bus; a non-root client starts one through pkexec (action
// org.opdbus.core.start) on a private bus. pkexec only talks to /run/dbus/system_bus_socket, so each
// client runs in a mount namespace where the sandbox's directory is bind-mounted on /run/dbus, and
// an overlay on /usr/lib holds the launcher at the path the action's exec.path names.
let sb: TestSandbox;
let work: string;

beforeAll(async () => {
  sb = await TestSandbox.start({ core: false });
  work = join(sb.dir, '..');
  for (const d of ['usr-lib-upper/op-dbus', 'usr-lib-work', 'core-data'])
    mkdirSync(join(work, d), { recursive: true });
  const launcher = join(work, 'usr-lib-upper/op-dbus/op-dbus-core');
  // as build/pkexec/op-dbus-core, but running this checkout's build with a test data directory
  writeFileSync(
    launcher,
    `#!/bin/sh\nset -eu\n[ "$#" -eq 1 ] || exit 2\nexec ${process.execPath} ${CLI} core --private-bus "$1" --data-dir ${join(work, 'core-data')}\n`,
  );
  chmodSync(launcher, 0o755);
  writeFileSync(
    join(polkitRulesDir(sb.dir), '50-pkexec-test.rules'),
    `polkit.addRule(function (action, subject) {
  if (subject.user != "nobody" && subject.user != "daemon" && subject.user != "bin") return polkit.Result.NOT_HANDLED;
  if (action.id == "org.opdbus.core.start") return subject.user != "daemon" ? polkit.Result.YES : polkit.Result.NO;
  if (action.id == "org.opdbus.apply" && subject.user == "bin") return polkit.Result.NO;
  if (action.id.indexOf("org.opdbus.") == 0) return polkit.Result.YES;
  return polkit.Result.NOT_HANDLED;
});
`,
  );
  await new Promise((r) => setTimeout(r, 500)); // polkitd reloads rules on change
});
afterAll(async () => {
  await sb?.stop();
});

/** Runs the CLI as `user` in a mount namespace where pkexec finds the sandbox bus and the launcher. */
function asUserWithPkexec(user: string, args: string[]) {
  const mounts = [
    `mount --bind ${sb.dir} /run/dbus`,
    `mount -t overlay overlay -o lowerdir=/usr/lib,upperdir=${work}/usr-lib-upper,workdir=${work}/usr-lib-work /usr/lib`,
  ].join(' && ');
  const client = [
    'runuser',
    '-u',
    user,
    '--',
    'env',
    'OP_DBUS_PKEXEC=1',
    `DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket`,
    process.execPath,
    CLI,
    ...args,
  ]
    .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
    .join(' ');
  const r = spawnSync(
    'unshare',
    ['-m', '--propagation', 'private', 'sh', '-c', `${mounts} && exec ${client}`],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the pkexec path', () => {
  it('a user allowed core.start gets a core on a private bus: same API, same polkit checks', () => {
    const r = asUserWithPkexec('nobody', ['query', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const q = JSON.parse(r.stdout) as { plugins: { plugin: string; available: boolean }[] };
    expect(q.plugins[0]).toMatchObject({ plugin: 'hostname', available: true });
  });

  it('applies through the private bus; the audit records the caller by process (unix-process subject)', async () => {
    const file = writeDocument(
      join(work, 'docs'),
      'pk.json',
      JSON.stringify({ version: 1, plugins: { hostname: { location: 'Via pkexec' } } }),
    );
    chmodSync(join(work, 'docs'), 0o755);
    const r = asUserWithPkexec('nobody', ['apply', file, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(sb.machineInfo()['LOCATION']).toBe('Via pkexec');
    const list = asUserWithPkexec('nobody', ['audit', 'list', '--kind', 'apply', '--json']);
    const entry = (JSON.parse(list.stdout) as { entries: { actor: { uid: number; action: string } }[] })
      .entries[0];
    const nobody = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim());
    expect(entry?.actor).toMatchObject({ uid: nobody, action: 'org.opdbus.apply' });
  });

  it('each method is still checked on the private bus: a user refused apply changes nothing', () => {
    const file = writeDocument(
      join(work, 'docs'),
      'bin.json',
      JSON.stringify({ version: 1, plugins: { hostname: { location: 'Via bin' } } }),
    );
    const r = asUserWithPkexec('bin', ['apply', file, '--yes', '--json']);
    expect(r.code).toBe(1);
    expect((JSON.parse(r.stdout) as { error: ErrorPayload }).error.message).toMatch(
      /^not authorised: org\.opdbus\.apply/,
    );
    expect(sb.machineInfo()['LOCATION']).toBe('Via pkexec');
  });

  it('the core goes away with the client that started it, and removes its private bus', async () => {
    await waitFor(
      'the pkexec cores to exit',
      () => spawnSync('pgrep', ['-f', 'core --private-bus']).status !== 0,
      10_000,
    );
  });

  it('a user refused core.start gets a clear error and no core', () => {
    const r = asUserWithPkexec('daemon', ['query', '--json']);
    expect(r.code).toBe(1);
    const error = (JSON.parse(r.stdout) as { error: ErrorPayload }).error;
    expect(error.code).toBe('NotAuthorized');
    expect(error.message).toMatch(/org\.opdbus\.core\.start/);
  });
});
