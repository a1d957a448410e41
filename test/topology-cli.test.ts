import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ErrorPayload, TopologyResponse } from '../main/common/contract/index.js';
import { CLI, ROOT } from './support/sandbox.js';

// `op-dbus topology --sysfs-root DIR` on a saved tree (issue 11, point 4): DIR may be the sysfs root
// itself or the directory that holds its sys/ (as hwloc's dumps and a tar of /sys do); a directory
// with neither is an error naming what is missing, not an empty machine and exit 0.
const MACHINE = '20em64t-hybrid-1p6c2t+2ca4co1t';
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'opdbus-topology-cli-'));
  execFileSync('tar', [
    'xzf',
    join(ROOT, '../shared/fixtures/numa-hwloc.tar.gz'),
    '-C',
    dir,
    `numa/${MACHINE}/sys`,
  ]);
  mkdirSync(join(dir, 'empty'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const topology = (root: string) =>
  spawnSync(process.execPath, [CLI, 'topology', '--sysfs-root', root, '--json'], { encoding: 'utf8' });

describe('op-dbus topology --sysfs-root', () => {
  it('reads the same machine from the sysfs root and from the directory that holds its sys/', () => {
    const machine = join(dir, 'numa', MACHINE);
    const above = topology(machine);
    expect(above.status, above.stderr).toBe(0);
    expect(above.stdout).toBe(topology(join(machine, 'sys')).stdout);
    const t = JSON.parse(above.stdout) as TopologyResponse;
    expect(t.nodes.flatMap((n) => n.cpus)).toHaveLength(20);
  });

  it('fails on a directory that holds no sysfs tree, naming what is missing', () => {
    const r = topology(join(dir, 'empty'));
    expect(r.status).toBe(1);
    const error = (JSON.parse(r.stdout) as { error: ErrorPayload }).error;
    expect(error).toMatchObject({ code: 'InvalidArgument', where: { file: join(dir, 'empty') } });
    expect(error.message).toBe(
      `no CPUs under ${join(dir, 'empty')}: it holds neither devices/system/cpu/cpuN nor sys/devices/system/cpu/cpuN; --sysfs-root takes /sys or a saved copy of it`,
    );
  });

  it('fails on a directory that is not there, as a wrong argument', () => {
    const r = topology(join(dir, 'absent'));
    expect(r.status).toBe(1);
    expect((JSON.parse(r.stdout) as { error: ErrorPayload }).error).toMatchObject({
      code: 'InvalidArgument',
      message: `--sysfs-root: sysfs root ${join(dir, 'absent')} does not exist`,
    });
  });
});
