import type { TopologyResponse } from '../../../main/common/contract/index.js';

// Topology answers shaped like what `op-dbus topology --json --sysfs-root <dir>/sys` prints for
// hwloc's sysfs dumps (/work/shared/fixtures/numa-hwloc.tar.gz), generated rather than stored:
// the real outputs are 25-60 kB each. For the unit tests only.

const seq = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);

/** This 1-node, 2-CPU VM, verbatim. */
export function smallVm(): TopologyResponse {
  const perCpu = (level: number, type: 'data' | 'instruction' | 'unified', size_kb: number) =>
    [0, 1].map((cpu) => ({ level, type, size_kb, cpus: [cpu] }));
  return {
    nodes: [{ id: 0, cpus: [0, 1], memory_kb: 9005272, distances: [10] }],
    packages: [{ id: 0, cpus: [0, 1], nodes: [0] }],
    cores: [
      { package: 0, id: 0, cpus: [0] },
      { package: 0, id: 1, cpus: [1] },
    ],
    caches: [
      ...perCpu(1, 'data', 32),
      ...perCpu(1, 'instruction', 32),
      ...perCpu(2, 'unified', 1024),
      { level: 3, type: 'unified', size_kb: 32768, cpus: [0, 1] },
    ],
    offline_cpus: [],
    warnings: [],
  };
}

/**
 * 128ia64-17n4s2c: HP Superdome, 16 nodes of 8 CPUs (4 dual-core packages each) in groups of four,
 * and a 17th CPU-less node (interleaved memory) at distance 14 from all. No cache directories.
 */
export function ia64SeventeenNodes(): TopologyResponse {
  const distance = (i: number, j: number): number =>
    i === j ? 10 : i === 16 || j === 16 ? 14 : i >> 2 === j >> 2 ? 17 : 20;
  return {
    nodes: seq(0, 17).map((id) => ({
      id,
      cpus: id === 16 ? [] : seq(id * 8, 8),
      memory_kb: id === 16 ? 1020176 : 100597760,
      distances: seq(0, 17).map((j) => distance(id, j)),
    })),
    packages: seq(0, 64).map((p) => ({ id: p, cpus: seq(p * 2, 2), nodes: [p >> 2] })),
    cores: seq(0, 128).map((cpu) => ({ package: cpu >> 1, id: cpu & 1, cpus: [cpu] })),
    caches: [],
    offline_cpus: [],
    warnings: ['devices/system/cpu/cpu{0-127}/online: expected 0 or 1, got ""; taken as online'],
  };
}

/** 256ppc-8n8s4t: POWER7, 8 nodes with sparse ids, 64 SMT4 cores, package ids unknown to the kernel. */
export function ppc256Cpus(): TopologyResponse {
  const ids = [0, 1, 4, 5, 8, 9, 12, 13];
  const distance = (i: number, j: number): number => (i === j ? 10 : i >> 1 === j >> 1 ? 20 : 40);
  const cores = seq(0, 64).map((c) => ({ package: null, id: c * 4, cpus: seq(c * 4, 4) }));
  return {
    nodes: ids.map((id, i) => ({
      id,
      cpus: seq(i * 32, 32),
      memory_kb: 67108864,
      distances: ids.map((_, j) => distance(i, j)),
    })),
    packages: cores.map((c) => ({ id: null, cpus: c.cpus, nodes: [ids[c.id >> 5] ?? 0] })),
    cores,
    caches: (
      [
        [1, 'data', 32],
        [1, 'instruction', 32],
        [2, 'unified', 256],
        [3, 'unified', 4096],
      ] as const
    ).flatMap(([level, type, size_kb]) => cores.map((c) => ({ level, type, size_kb, cpus: c.cpus }))),
    offline_cpus: [],
    warnings: [
      'devices/system/cpu/cpu{0-255}/topology/physical_package_id: -1 (unknown to the kernel); packages told apart by their CPU sets',
    ],
  };
}

/** offline-cpu0-node0: CPUs 0-3 and 21-23 offline, two L3s shared by 9 and 8 of the online CPUs. */
export function offlineCpus(): TopologyResponse {
  const online = seq(4, 17);
  const even = online.filter((c) => c % 2 === 0);
  const odd = online.filter((c) => c % 2 === 1);
  return {
    nodes: [{ id: 1, cpus: odd, memory_kb: 67108864, distances: [10] }],
    packages: [
      { id: 0, cpus: even, nodes: [] },
      { id: 1, cpus: odd, nodes: [1] },
    ],
    cores: online.map((cpu) => ({ package: cpu % 2, id: cpu >> 1, cpus: [cpu] })),
    caches: [
      ...online.flatMap((cpu) => [
        { level: 1, type: 'data' as const, size_kb: 32, cpus: [cpu] },
        { level: 1, type: 'instruction' as const, size_kb: 32, cpus: [cpu] },
        { level: 2, type: 'unified' as const, size_kb: 256, cpus: [cpu] },
      ]),
      { level: 3, type: 'unified', size_kb: 30720, cpus: even },
      { level: 3, type: 'unified', size_kb: 30720, cpus: odd },
    ],
    offline_cpus: [0, 1, 2, 3, 21, 22, 23],
    warnings: [
      'devices/system/node/node1/distance: 2 entries but node/online lists 1; matched to node/possible',
      'devices/system/node: online CPUs 4,6,8,10,12,14,16,18,20 are listed by no node',
    ],
  };
}
