// readTopology and its outputs on small sysfs trees written by the test, one quirk at a time.

import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { topologyJson, topologyText } from './output.js';
import { readTopology } from './sysfs-reader.js';
import { nodeLocalCpus } from './topology.js';

let root: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'topology-reader-'));
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Write files (path relative to the sysfs root -> content) under the test's root. */
function writeTree(files: Record<string, string>): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
}

const CPU = 'devices/system/cpu';
const NODE = 'devices/system/node';

/** One package, 2 cores x 2 threads (cpus 0,2 and 1,3), one L1d per core and a shared L2, on `nodes`. */
function smallMachine(nodes: Record<number, string> = { 0: '0-3' }): void {
  const files: Record<string, string> = { [`${CPU}/online`]: '0-3\n', [`${CPU}/possible`]: '0-7\n' };
  for (const cpu of [0, 1, 2, 3]) {
    const siblings = cpu % 2 === 0 ? '0,2' : '1,3';
    const topology = `${CPU}/cpu${cpu}/topology`;
    Object.assign(files, {
      [`${topology}/physical_package_id`]: '0\n',
      [`${topology}/core_id`]: `${cpu % 2}\n`,
      [`${topology}/thread_siblings_list`]: `${siblings}\n`,
      [`${topology}/core_siblings_list`]: '0-3\n',
      [`${CPU}/cpu${cpu}/cache/index0/level`]: '1\n',
      [`${CPU}/cpu${cpu}/cache/index0/type`]: 'Data\n',
      [`${CPU}/cpu${cpu}/cache/index0/size`]: '32K\n',
      [`${CPU}/cpu${cpu}/cache/index0/shared_cpu_list`]: `${siblings}\n`,
      [`${CPU}/cpu${cpu}/cache/index2/level`]: '2\n',
      [`${CPU}/cpu${cpu}/cache/index2/type`]: 'Unified\n',
      [`${CPU}/cpu${cpu}/cache/index2/size`]: '1024K\n',
      [`${CPU}/cpu${cpu}/cache/index2/shared_cpu_map`]: '0000000f\n',
    });
  }
  const ids = Object.keys(nodes).map(Number);
  if (ids.length > 0) files[`${NODE}/online`] = `${ids.join(',')}\n`;
  for (const [id, cpus] of Object.entries(nodes)) {
    Object.assign(files, {
      [`${NODE}/node${id}/cpulist`]: `${cpus}\n`,
      [`${NODE}/node${id}/meminfo`]: `Node ${id} MemTotal:  ${1024 * (Number(id) + 1)} kB\nNode ${id} MemFree: 1 kB\n`,
      [`${NODE}/node${id}/distance`]: `${ids.map((other) => (other === Number(id) ? 10 : 20)).join(' ')}\n`,
    });
  }
  writeTree(files);
}

describe('readTopology', () => {
  it('throws a clear error when the root does not exist or is not a directory', () => {
    expect(() => readTopology(join(root, 'absent'))).toThrow(/sysfs root .*absent does not exist/u);
    writeFileSync(join(root, 'file'), '');
    expect(() => readTopology(join(root, 'file'))).toThrow(/is not a directory/u);
  });

  it('reads a directory that holds a saved sys/ as that tree', () => {
    smallMachine({ 0: '0-1', 1: '2-3' });
    const asRoot = readTopology(root);
    mkdirSync(join(root, 'sys'));
    renameSync(join(root, 'devices'), join(root, 'sys', 'devices'));
    expect(readTopology(root)).toEqual(asRoot);
    expect(readTopology(join(root, 'sys'))).toEqual(asRoot);
    expect(asRoot.cpus).toHaveLength(4);
  });

  it('reads an empty root as an empty topology with a warning, without throwing', () => {
    const topology = readTopology(root);
    expect(topology.cpus).toEqual([]);
    expect(topology.warnings).toContain(`${CPU}: missing`);
  });

  it('reads packages, cores, caches and nodes of a small machine', () => {
    smallMachine({ 0: '0-1', 1: '2-3' });
    const topology = readTopology(root);
    expect(topology.warnings).toEqual([]);
    expect(topology.onlineCpus).toEqual([0, 1, 2, 3]);
    expect(topology.possibleCpus).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(topology.packages).toEqual([{ id: 0, cpus: [0, 1, 2, 3], nodes: [0, 1] }]);
    expect(topology.cores).toEqual([
      { package: 0, id: 0, cpus: [0, 2] },
      { package: 0, id: 1, cpus: [1, 3] },
    ]);
    expect(topology.caches).toEqual([
      { level: 1, type: 'data', sizeBytes: 32768, cpus: [0, 2] },
      { level: 1, type: 'data', sizeBytes: 32768, cpus: [1, 3] },
      { level: 2, type: 'unified', sizeBytes: 1048576, cpus: [0, 1, 2, 3] },
    ]);
    expect(topology.nodes.map((node) => [node.id, node.cpus, node.memoryKb])).toEqual([
      [0, [0, 1], 1024],
      [1, [2, 3], 2048],
    ]);
    expect(topology.cpus.map((cpu) => cpu.node)).toEqual([0, 0, 1, 1]);
  });

  it('stands in one node 0 with all CPUs on a kernel without NUMA (no node directory)', () => {
    smallMachine({});
    const topology = readTopology(root);
    expect(topology.implicitNode).toBe(true);
    expect(topology.nodes).toEqual([
      {
        id: 0,
        cpus: [0, 1, 2, 3],
        listedCpus: [0, 1, 2, 3],
        memoryKb: null,
        distances: [{ node: 0, distance: 10 }],
        cpuInitiators: [],
      },
    ]);
    expect(topology.warnings).toEqual([]);
    expect(topologyText(topology)).toContain('1 NUMA node (implicit: kernel without NUMA)');
  });

  it('keeps what it can read and names each unreadable file in a warning', () => {
    smallMachine();
    writeTree({
      [`${NODE}/node0/meminfo`]: 'garbage\n',
      [`${CPU}/cpu1/topology/core_id`]: '1\u00002\n',
      [`${CPU}/cpu2/cache/index0/size`]: '-32K\n',
    });
    rmSync(join(root, `${CPU}/cpu3/topology/physical_package_id`));
    const topology = readTopology(root);
    expect(topology.nodes[0]?.memoryKb).toBeNull();
    expect(topology.nodes[0]?.cpus).toEqual([0, 1, 2, 3]);
    expect(topology.cpus[1]?.core).toBeNull();
    expect(topology.cpus[3]?.package).toBeNull();
    expect(topology.caches.find((cache) => cache.level === 1 && cache.cpus.includes(2))?.sizeBytes).toBe(
      32768,
    );
    expect(topology.warnings.toSorted()).toEqual([
      `${CPU}/cpu1/topology/core_id: not an integer: "1\\u00002\\n"`,
      `${CPU}/cpu2/cache/index0/size: not a cache size: "-32K\\n"`,
      `${CPU}/cpu3/topology/physical_package_id: missing`,
      `${NODE}/node0/meminfo: no "MemTotal: N kB" line in "garbage\\n"`,
    ]);
  });

  it('merges the same warning about many CPUs into one line', () => {
    smallMachine();
    for (const cpu of [0, 1, 3]) writeTree({ [`${CPU}/cpu${cpu}/topology/core_id`]: '\n' });
    expect(readTopology(root).warnings).toEqual([
      `${CPU}/cpu{0-1,3}/topology/core_id: not an integer: "\\n"`,
    ]);
  });

  it('refuses directory symlinks that point back to an ancestor, and file symlink loops', () => {
    smallMachine();
    symlinkSync('.', join(root, `${NODE}/node1`)); // node/node1 -> node/ itself
    symlinkSync('..', join(root, `${CPU}/cpu0/cache/index9`)); // a cache index leading back to cpu0
    rmSync(join(root, `${CPU}/cpu1/cache`), { recursive: true });
    symlinkSync('../../cpu', join(root, `${CPU}/cpu1/cache`)); // cache -> cpu/, an ancestor
    rmSync(join(root, `${CPU}/cpu2/topology/core_id`));
    symlinkSync('core_id', join(root, `${CPU}/cpu2/topology/core_id`)); // a link to itself
    const topology = readTopology(root);
    expect(topology.warnings.toSorted()).toEqual([
      `${CPU}/cpu0/cache/index9: symlink to its own ancestor (a cycle); not followed`,
      `${CPU}/cpu1/cache: symlink to its own ancestor (a cycle); not followed`,
      `${CPU}/cpu2/topology/core_id: symlink loop`,
      `${NODE}/node1: symlink to its own ancestor (a cycle); not followed`,
    ]);
    expect(topology.nodes.map((node) => node.id)).toEqual([0]);
    expect(topology.caches).toHaveLength(3);
  });

  it('follows a directory symlink that is not a cycle', () => {
    smallMachine();
    mkdirSync(join(root, 'elsewhere'));
    writeTree({
      'elsewhere/cpulist': '0-3\n',
      'elsewhere/meminfo': 'Node 1 MemTotal: 5 kB\n',
      'elsewhere/distance': '20 10\n',
    });
    writeTree({ [`${NODE}/online`]: '0-1\n', [`${NODE}/node0/distance`]: '10 20\n' });
    symlinkSync('../../../elsewhere', join(root, `${NODE}/node1`));
    const topology = readTopology(root);
    expect(topology.nodes.map((node) => [node.id, node.memoryKb])).toEqual([
      [0, 1024],
      [1, 5],
    ]);
    expect(topology.warnings).toContain(`${NODE}/node1: lists cpu0, already listed by node0`);
  });

  it('maps distance rows to node ids, sparse ones included, and warns when no node list fits', () => {
    smallMachine({ 0: '0-1', 33: '2-3' });
    writeTree({ [`${NODE}/node33/distance`]: '20 10 30\n' });
    const topology = readTopology(root);
    expect(topology.nodes[0]?.distances).toEqual([
      { node: 0, distance: 10 },
      { node: 33, distance: 20 },
    ]);
    expect(topology.nodes[1]?.distances).toEqual([]);
    expect(topology.warnings).toEqual([
      `${NODE}/node33/distance: 3 entries match no node list (node/online has 2)`,
    ]);
    expect(topologyJson(topology).nodes.map((node) => node.distances)).toEqual([
      [10, 20],
      [null, null],
    ]);
  });

  it('uses the hex cpumap when a node has no cpulist (kernels before 2.6.28)', () => {
    smallMachine({ 0: '0-3' });
    rmSync(join(root, `${NODE}/node0/cpulist`));
    writeTree({ [`${NODE}/node0/cpumap`]: '00000000,0000000f\n\0' });
    const topology = readTopology(root);
    expect(topology.nodes[0]?.listedCpus).toEqual([0, 1, 2, 3]);
    expect(topology.warnings).toEqual([]);
  });

  it('places a CPU-less node by its HMAT CPU initiators', () => {
    smallMachine({ 0: '0-3', 1: '' });
    mkdirSync(join(root, `${NODE}/node1/access1/initiators`), { recursive: true });
    symlinkSync('../../../node0', join(root, `${NODE}/node1/access1/initiators/node0`));
    const topology = readTopology(root);
    const memoryOnly = topology.nodes[1];
    expect(memoryOnly?.cpus).toEqual([]);
    expect(memoryOnly?.cpuInitiators).toEqual([0]);
    expect(memoryOnly === undefined ? [] : nodeLocalCpus(topology, memoryOnly)).toEqual([0, 1, 2, 3]);
  });

  it('counts present CPUs that are not online as offline, and leaves them out of packages, cores and nodes', () => {
    smallMachine({ 0: '0-3' });
    writeTree({ [`${CPU}/online`]: '0-2\n' });
    rmSync(join(root, `${CPU}/cpu3/topology`), { recursive: true });
    const topology = readTopology(root);
    expect(topology.offlineCpus).toEqual([3]);
    expect(topology.nodes[0]?.cpus).toEqual([0, 1, 2]);
    expect(topology.nodes[0]?.listedCpus).toEqual([0, 1, 2, 3]);
    expect(topology.cores.map((core) => core.cpus)).toEqual([[0, 2], [1]]);
    expect(topology.warnings).toEqual([]);
  });
});

describe('topologyJson and topologyText', () => {
  it('print the documented JSON shape', () => {
    smallMachine({ 0: '0-1', 1: '2-3' });
    writeTree({ [`${CPU}/online`]: '0-2\n' });
    const json = topologyJson(readTopology(root));
    expect(json).toEqual({
      nodes: [
        { id: 0, cpus: [0, 1], memory_kb: 1024, distances: [10, 20] },
        { id: 1, cpus: [2], memory_kb: 2048, distances: [20, 10] },
      ],
      packages: [{ id: 0, cpus: [0, 1, 2], nodes: [0, 1] }],
      cores: [
        { package: 0, id: 0, cpus: [0, 2] },
        { package: 0, id: 1, cpus: [1] },
      ],
      caches: [
        { level: 1, type: 'data', size_kb: 32, cpus: [0, 2] },
        { level: 1, type: 'data', size_kb: 32, cpus: [1] },
        { level: 2, type: 'unified', size_kb: 1024, cpus: [0, 1, 2] },
      ],
      offline_cpus: [3],
      warnings: [],
    });
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
  });

  it('print a short table', () => {
    smallMachine({ 0: '0-1', 1: '2-3' });
    expect(topologyText(readTopology(root))).toBe(
      [
        '1 package, 2 NUMA nodes, 2 cores, 4 online CPUs',
        '',
        'node  cpus  memory   distances',
        '0     0-1   1.0 MiB  10 20',
        '1     2-3   2.0 MiB  20 10',
        '',
        'package  cpus  nodes',
        '0        0-3   0-1',
        '',
        'cache  size    count  shared by',
        'L1d    32 KiB  x2     2 CPUs each',
        'L2     1 MiB   x1     4 CPUs each',
        '',
      ].join('\n'),
    );
  });
});
