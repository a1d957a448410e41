import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leftoverCheck, leftovers, snapshotHost, type HostPlaces } from './support/leftovers.js';

// The check that runs around the whole suite (test/global-setup.ts, e2e/global-setup.ts) must name
// what a test leaves behind. Here /tmp, $HOME, /run/netns and /sys/block are directories of the
// test's own; processes and mounts are the machine's real ones, made and removed by the test.
let scratch: string;
let places: HostPlaces;
let child: ChildProcess | undefined;
let mounted: string | undefined;

beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), 'opdbus-leftovers-'));
  places = {
    tmp: join(scratch, 'tmp'),
    home: join(scratch, 'home'),
    netnsDir: join(scratch, 'netns'),
    blockDir: join(scratch, 'block'),
    proc: '/proc',
    lxcLockDir: join(scratch, 'lxc-lock'),
    cgroupDir: join(scratch, 'cgroup'),
  };
  for (const dir of [places.tmp, join(places.home, '.local/state'), places.netnsDir, places.blockDir])
    mkdirSync(dir, { recursive: true });
});
afterEach(() => {
  child?.kill('SIGKILL');
  if (mounted !== undefined) spawnSync('umount', [mounted]);
  rmSync(scratch, { recursive: true, force: true });
});

describe('the leftover check', () => {
  it('names each kind of thing left behind, and nothing once it is gone', async () => {
    const before = snapshotHost(places);
    expect(leftovers(before, snapshotHost(places))).toEqual([]);

    mkdirSync(join(places.tmp, 'opdbus-serve-x'));
    mkdirSync(join(places.home, '.local/state/op-dbus/witness'), { recursive: true });
    writeFileSync(join(places.home, '.local/state/op-dbus/witness/host.json'), '{}');
    writeFileSync(join(places.netnsDir, 'opdbus-test'), '');
    mkdirSync(join(places.blockDir, 'loop7/loop'), { recursive: true });
    writeFileSync(join(places.blockDir, 'loop7/loop/backing_file'), '/tmp/x/fs.img\n');
    mkdirSync(join(scratch, 'lxc-lock/tmp/opdbus-lxc-x/sb/lxc'), { recursive: true });
    mkdirSync(join(scratch, 'cgroup/memory/process_api/0a1b/opdbus-0123456789/100'), { recursive: true });
    // a process named as the sandbox's bus daemon is, by its argv[0]
    child = spawn('sleep', ['30'], { argv0: 'dbus-daemon', stdio: 'ignore' });
    await new Promise((resolve) => child?.once('spawn', resolve));
    mounted = join(scratch, 'mnt');
    mkdirSync(mounted);
    expect(spawnSync('mount', ['-t', 'tmpfs', 'opdbus-leftovers', mounted]).status).toBe(0);

    expect(leftovers(before, snapshotHost(places)).sort()).toEqual(
      [
        `in /tmp: ${join(places.tmp, 'opdbus-serve-x')}`,
        `in $HOME: ${join(places.home, '.local/state/op-dbus')}`,
        `process: pid ${child.pid}: dbus-daemon 30`,
        `mount: ${mounted} (tmpfs from opdbus-leftovers)`,
        'network namespace: opdbus-test',
        'loop device: /dev/loop7 (/tmp/x/fs.img)',
        `LXC lock: ${join(scratch, 'lxc-lock/tmp/opdbus-lxc-x')}`,
        `cgroup: ${join(scratch, 'cgroup/memory/process_api/0a1b/opdbus-0123456789')}`,
      ].sort(),
    );

    child.kill('SIGKILL');
    await new Promise((resolve) => child?.once('exit', resolve));
    spawnSync('umount', [mounted]);
    mounted = undefined;
    for (const p of [join(places.tmp, 'opdbus-serve-x'), join(places.home, '.local/state/op-dbus')])
      rmSync(p, { recursive: true });
    rmSync(join(places.netnsDir, 'opdbus-test'));
    rmSync(join(places.blockDir, 'loop7'), { recursive: true });
    rmSync(join(scratch, 'lxc-lock/tmp/opdbus-lxc-x'), { recursive: true });
    rmSync(join(scratch, 'cgroup/memory'), { recursive: true });
    expect(leftovers(before, snapshotHost(places))).toEqual([]);
  });

  it("fails the run from the global teardown, naming what was left but the runner's own", () => {
    const teardown = leftoverCheck([join(places.tmp, 'runner-tmp')], places);
    mkdirSync(join(places.tmp, 'left-by-a-test'));
    mkdirSync(join(places.tmp, 'runner-tmp'));
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    const exitCode = process.exitCode;
    process.stderr.write = (text: string | Uint8Array) => written.push(String(text)) > 0;
    try {
      teardown();
      expect(process.exitCode).toBe(1);
    } finally {
      process.stderr.write = write;
      process.exitCode = exitCode;
    }
    expect(written.join('')).toContain(`in /tmp: ${join(places.tmp, 'left-by-a-test')}`);
    expect(written.join('')).not.toContain('runner-tmp');
  });
});
