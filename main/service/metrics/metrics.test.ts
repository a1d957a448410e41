import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTopology } from '../../common/topology/index.js';
import { readNodeMemory } from './node-memory.js';
import { choosePlacement } from './placement.js';

// Real machines' sysfs trees (hwloc's test dumps) for what this 1-node VM cannot show. What is said
// of "this host" holds on any machine (one node or several, node 0 or not): each host-facing check
// runs on /sys and on the dumps of an 8-node, a 17-node, a one-node and a node-1-only machine.
let root: string;
const machine = (name: string): string => join(root, 'numa', name, 'sys');
const HOSTS = [
  '64amd64-4s2n4ca2co',
  '128ia64-17n4s2c',
  '20em64t-hybrid-1p6c2t+2ca4co1t',
  'offline-cpu0-node0',
];
const hostRoots = (): Array<[string, string]> => [
  ['this host', '/sys'],
  ...HOSTS.map((name): [string, string] => [name, machine(name)]),
];

/** MemTotal of each node as its own meminfo says, read without the code under test. */
function meminfoTotals(sysfsRoot: string): Array<{ id: number; total_kb: number }> {
  const base = join(sysfsRoot, 'devices/system/node');
  if (!existsSync(base)) return [];
  return readdirSync(base)
    .flatMap((entry) => {
      const m = /^node(\d+)$/.exec(entry);
      if (m === null) return [];
      const text = readFileSync(join(base, entry, 'meminfo'), 'utf8');
      return [{ id: Number(m[1]), total_kb: Number(/MemTotal:\s+(\d+)/.exec(text)?.[1]) }];
    })
    .sort((a, b) => a.id - b.id);
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'metrics-'));
  execFileSync('tar', [
    'xzf',
    fileURLToPath(new URL('../../../../shared/fixtures/numa-hwloc.tar.gz', import.meta.url)),
    '-C',
    root,
    ...HOSTS.map((name) => `numa/${name}`),
  ]);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('readNodeMemory', () => {
  it('reads every node of an 8-node Opteron, including the one with half the memory', () => {
    const mem = readNodeMemory(machine('64amd64-4s2n4ca2co'));
    expect(mem.map((m) => m.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(mem[5]).toEqual({ id: 5, total_kb: 8388608, free_kb: 8036468 });
    expect(mem[0]?.total_kb).toBe(16769836);
  });

  it("agrees with each host's sysfs: every node, as its meminfo says", () => {
    for (const [name, sysfs] of hostRoots()) {
      const totals = meminfoTotals(sysfs);
      if (totals.length === 0) continue; // a kernel without NUMA: the next test
      expect(
        readNodeMemory(sysfs).map(({ id, total_kb }) => ({ id, total_kb })),
        name,
      ).toEqual(totals);
    }
    expect(readNodeMemory(machine('offline-cpu0-node0')).map((m) => m.id)).toEqual([1]);
  });

  it('reads /proc/meminfo as one node 0 where the kernel has no NUMA', () => {
    const none = readNodeMemory(join(root, 'no-such-sysfs'));
    expect(none).toHaveLength(1);
    expect(none[0]?.total_kb).toBe(
      Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]),
    );
  });
});

describe('choosePlacement', () => {
  it('picks the node with CPUs and the most free memory, with its CPUs and the reason', () => {
    const sys = machine('64amd64-4s2n4ca2co');
    const p = choosePlacement(readTopology(sys), readNodeMemory(sys), true);
    expect(p.enabled).toBe(true);
    expect(p.node).toBe(4); // 16229444 kB free, the most of the eight
    expect(p.cpus).toEqual(readTopology(sys).nodes.find((n) => n.id === 4)?.cpus);
    expect(p.reason).toMatch(/node 4: the most free memory .* of 8 nodes/);
  });

  it('never places on a memory-only node without CPUs, however much memory it has free', () => {
    const sys = machine('128ia64-17n4s2c');
    const memory = readNodeMemory(sys).map((m) => (m.id === 16 ? { ...m, free_kb: 1e12 } : m));
    const p = choosePlacement(readTopology(sys), memory, true);
    expect(p.node).not.toBe(16);
    expect(p.cpus.length).toBeGreaterThan(0);
  });

  it('has an off switch', () => {
    const sys = machine('64amd64-4s2n4ca2co');
    expect(choosePlacement(readTopology(sys), readNodeMemory(sys), false)).toMatchObject({
      enabled: false,
      reason: /off/,
    });
  });

  it('on each host: does nothing with one node with CPUs, else picks one of them', () => {
    for (const [name, sysfs] of hostRoots()) {
      const topology = readTopology(sysfs);
      const withCpus = topology.nodes.filter((n) => n.cpus.length > 0);
      const p = choosePlacement(topology, readNodeMemory(sysfs), true);
      if (withCpus.length <= 1) {
        expect(p, name).toMatchObject({
          enabled: false,
          node: withCpus[0]?.id ?? null,
          reason: /one NUMA node/,
        });
      } else {
        expect(p.enabled, name).toBe(true);
        expect(p.cpus, name).toEqual(withCpus.find((n) => n.id === p.node)?.cpus);
      }
    }
    // node 1 is the only node there: no node 0 is assumed
    const lone = machine('offline-cpu0-node0');
    expect(choosePlacement(readTopology(lone), readNodeMemory(lone), true).node).toBe(1);
  });
});
