// Reads the CPU/NUMA topology from <root>/devices/system/{node,cpu}. Nothing under the root can make
// it throw: a missing or garbled file leaves a gap and a warning naming the file. Only a root that is
// not there at all is an error.

import { existsSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { MAX_CPU_ID, formatCpuList, parseCpuList, parseCpuMap } from './cpulist.js';
import { SysfsTree } from './sysfs-files.js';
import {
  parseCacheSizeBytes,
  parseCacheType,
  parseDistanceRow,
  parseMemTotalKb,
  parseSysfsInt,
  previewText,
  stripSysfsText,
  SysfsFormatError,
} from './sysfs-text.js';
import type {
  CpuCache,
  CpuCore,
  CpuPackage,
  LogicalCpu,
  NodeDistance,
  NodeMasks,
  NumaNode,
  Topology,
} from './topology.js';

const CPU_DIR = 'devices/system/cpu';
const NODE_DIR = 'devices/system/node';

// Ids in topology/*_id are C ints; -1 means the kernel does not know (e.g. POWER LPARs' packages).
const MAX_TOPOLOGY_ID = 2 ** 31 - 1;
const UNKNOWN_ID = -1;
// Cache levels in sysfs run 1-4 today; the bound only rejects what cannot be a level.
const MAX_CACHE_LEVEL = 15;
// Each CPU set under its current name (5.x kernels) first, then the older name.
const CORE_CPUS: CpuSetFiles = { list: 'core_cpus_list', map: 'core_cpus' };
const THREAD_SIBLINGS: CpuSetFiles = { list: 'thread_siblings_list', map: 'thread_siblings' };
const PACKAGE_CPUS: CpuSetFiles = { list: 'package_cpus_list', map: 'package_cpus' };
const CORE_SIBLINGS: CpuSetFiles = { list: 'core_siblings_list', map: 'core_siblings' };
const NODE_CPUS: CpuSetFiles = { list: 'cpulist', map: 'cpumap' };
const CACHE_CPUS: CpuSetFiles = { list: 'shared_cpu_list', map: 'shared_cpu_map' };
// The distance from a node to itself (LOCAL_DISTANCE in the kernel), used for the implicit node.
const LOCAL_DISTANCE = 10;

/**
 * Read the CPU/NUMA topology under a sysfs root ('/sys' on a live system, or a directory holding a
 * saved `sys/`). Throws only if the root does not exist.
 */
export function readTopology(sysfsRoot: string): Topology {
  const tree = new SysfsTree(resolveRoot(sysfsRoot));
  const onlineMask = tree.parse(`${CPU_DIR}/online`, parseCpuList, 'optional');
  const possibleCpus = tree.parse(`${CPU_DIR}/possible`, parseCpuList, 'optional') ?? null;
  const cpus = readCpus(tree, onlineMask === undefined ? undefined : new Set(onlineMask));
  const onlineCpus = cpus.filter((cpu) => cpu.online).map((cpu) => cpu.id);
  const { nodes, nodeMasks, implicitNode } = readNodes(tree, cpus, onlineCpus);
  assignCpusToNodes(tree, cpus, nodes, implicitNode);
  const online = new Set(onlineCpus);
  return {
    nodes,
    nodeMasks,
    implicitNode,
    cpus,
    onlineCpus,
    offlineCpus: cpus.filter((cpu) => !cpu.online).map((cpu) => cpu.id),
    possibleCpus,
    packages: groupPackages(cpus),
    cores: groupCores(cpus),
    caches: readCaches(tree, onlineCpus, online),
    warnings: tree.warnings.lines(),
  };
}

function resolveRoot(sysfsRoot: string): string {
  let root: string;
  try {
    root = realpathSync(sysfsRoot);
  } catch {
    throw new Error(`sysfs root ${sysfsRoot} does not exist`);
  }
  if (!statSync(root).isDirectory()) throw new Error(`sysfs root ${sysfsRoot} is not a directory`);
  // A saved tree is often the directory above sys/ (a tar of /sys, hwloc's dumps): read what it holds
  // rather than an empty machine.
  const saved = join(root, 'sys');
  if (
    !existsSync(join(root, 'devices')) &&
    statSync(saved, { throwIfNoEntry: false })?.isDirectory() === true
  )
    return saved;
  return root;
}

/** Numeric suffixes of the entries named <prefix>N in a directory, ascending; out-of-range ones are warned. */
function numberedEntries(tree: SysfsTree, directory: string, prefix: string): number[] {
  const ids: number[] = [];
  // No leading zeros: the kernel never writes them, and "cpu007" must not stand for cpu7's directory.
  const pattern = new RegExp(`^${prefix}(0|[1-9]\\d*)$`, 'u');
  for (const name of tree.listDirectory(directory) ?? []) {
    const match = pattern.exec(name);
    if (match === null) continue;
    const id = Number(match[1]);
    if (id > MAX_CPU_ID) tree.warn(`${directory}/${name}`, `id ${match[1]} exceeds ${MAX_CPU_ID}; ignored`);
    else ids.push(id);
  }
  return ids.sort((a, b) => a - b);
}

function parseTopologyId(text: string): number | null {
  const id = parseSysfsInt(text, UNKNOWN_ID, MAX_TOPOLOGY_ID);
  return id === UNKNOWN_ID ? null : id;
}

function parseOnlineFlag(text: string): boolean {
  const body = stripSysfsText(text);
  if (body !== '0' && body !== '1')
    throw new SysfsFormatError(`expected 0 or 1, got ${previewText(text)}; taken as online`);
  return body === '1';
}

/** One CPU set that sysfs prints twice: in list format (`*_list`, `cpulist`) and as a hex mask. */
interface CpuSetFiles {
  list: string;
  map: string;
}

/**
 * A CPU set read from the first pair of files (newest names first) that gives one. When both files
 * of the pair parse but name different online CPUs, that is warned and the preferred format kept:
 * hand-edited dumps change only the masks, and an old AMD kernel printed wrong cache lists.
 */
function readCpuSet(
  tree: SysfsTree,
  directory: string,
  pairs: CpuSetFiles[],
  prefer: keyof CpuSetFiles,
  online: ReadonlySet<number>,
): number[] | undefined {
  let anyFound = false;
  for (const pair of pairs) {
    const list = tree.parseOutcome(`${directory}/${pair.list}`, parseCpuList);
    const map = tree.parseOutcome(`${directory}/${pair.map}`, parseCpuMap);
    anyFound ||= list.kind !== 'missing' || map.kind !== 'missing';
    if (list.kind !== 'value') {
      if (map.kind === 'value') return map.value;
      continue; // both missing or garbled (warned): an older pair may still tell
    }
    if (map.kind !== 'value') return list.value;
    const onlineList = list.value.filter((cpu) => online.has(cpu));
    const onlineMap = map.value.filter((cpu) => online.has(cpu));
    if (onlineList.join() !== onlineMap.join()) {
      // No values in the message, so the same disagreement on many CPUs merges into one warning.
      tree.warn(
        `${directory}/${pair[prefer]}`,
        `${pair.list} and ${pair.map} disagree on online CPUs; using ${pair[prefer]}`,
      );
    }
    return prefer === 'list' ? list.value : map.value;
  }
  // Named after the oldest file, the one every kernel that has this set at all provides.
  const names = pairs.flatMap((pair) => [pair.list, pair.map]);
  const oldest = names.pop();
  if (!anyFound && oldest !== undefined) {
    tree.warn(
      `${directory}/${oldest}`,
      `missing (as ${names.length === 1 ? 'is' : 'are'} ${names.join(', ')})`,
    );
  }
  return undefined;
}

function readCpus(tree: SysfsTree, onlineMask: Set<number> | undefined): LogicalCpu[] {
  if (!tree.enterDirectory(CPU_DIR, 'required')) return [];
  const present: Array<{ id: number; directory: string; online: boolean }> = [];
  for (const id of numberedEntries(tree, CPU_DIR, 'cpu')) {
    const directory = `${CPU_DIR}/cpu${id}`;
    if (!tree.enterDirectory(directory, 'required')) continue;
    // Without cpu/online (old kernels) each CPU says for itself; one without the file cannot be
    // unplugged (often cpu0) and is online. An unreadable flag is taken as online, and warned.
    const online =
      onlineMask?.has(id) ?? tree.parse(`${directory}/online`, parseOnlineFlag, 'optional') ?? true;
    present.push({ id, directory, online });
  }
  // Sibling sets are compared on online CPUs only, so all online flags are needed first.
  const online = new Set(present.filter((cpu) => cpu.online).map((cpu) => cpu.id));
  return present.map((cpu) => readCpuTopology(tree, cpu.id, cpu.directory, online));
}

function readCpuTopology(
  tree: SysfsTree,
  id: number,
  cpuDirectory: string,
  online: ReadonlySet<number>,
): LogicalCpu {
  const cpu: LogicalCpu = {
    id,
    online: online.has(id),
    node: null,
    package: null,
    die: null,
    cluster: null,
    core: null,
    threadSiblings: [],
    packageSiblings: [],
  };
  const directory = `${cpuDirectory}/topology`;
  // The kernel removes topology/ of offline CPUs, so its absence is only worth a warning when online.
  if (!tree.enterDirectory(directory, cpu.online ? 'required' : 'optional')) return cpu;
  const packageId = tree.parse(`${directory}/physical_package_id`, parseTopologyId, 'required');
  if (packageId === null) {
    tree.warn(
      `${directory}/physical_package_id`,
      '-1 (unknown to the kernel); packages told apart by their CPU sets',
    );
  }
  cpu.package = packageId ?? null;
  // die_id and cluster_id only exist on newer kernels (5.2+, 5.16+): their absence is normal.
  cpu.die = tree.parse(`${directory}/die_id`, parseTopologyId, 'optional') ?? null;
  cpu.cluster = tree.parse(`${directory}/cluster_id`, parseTopologyId, 'optional') ?? null;
  cpu.core = tree.parse(`${directory}/core_id`, parseTopologyId, 'required') ?? null;
  // Masks are preferred, as hwloc reads them (see readCpuSet for why they are the more trustworthy).
  cpu.threadSiblings = readCpuSet(tree, directory, [CORE_CPUS, THREAD_SIBLINGS], 'map', online) ?? [];
  cpu.packageSiblings = readCpuSet(tree, directory, [PACKAGE_CPUS, CORE_SIBLINGS], 'map', online) ?? [];
  return cpu;
}

interface NodeSection {
  nodes: NumaNode[];
  nodeMasks: NodeMasks;
  implicitNode: boolean;
}

function readNodeMasks(tree: SysfsTree): NodeMasks {
  const mask = (file: string) => tree.parse(`${NODE_DIR}/${file}`, parseCpuList, 'optional') ?? null;
  return {
    online: mask('online'),
    possible: mask('possible'),
    hasCpu: mask('has_cpu'),
    hasMemory: mask('has_memory'),
    hasNormalMemory: mask('has_normal_memory'),
  };
}

function readNodes(tree: SysfsTree, cpus: LogicalCpu[], onlineCpus: number[]): NodeSection {
  const online = new Set(onlineCpus);
  const hasNodeDirectory = tree.enterDirectory(NODE_DIR, 'optional');
  const nodeMasks = readNodeMasks(tree);
  const nodeIds = hasNodeDirectory ? numberedEntries(tree, NODE_DIR, 'node') : [];
  if (nodeIds.length === 0) {
    if (hasNodeDirectory) tree.warn(NODE_DIR, 'no nodeN directory; treated as one node 0 with all CPUs');
    return { nodes: [implicitNode(cpus)], nodeMasks, implicitNode: true };
  }
  const rows = new Map<number, number[]>();
  const nodes: NumaNode[] = [];
  for (const id of nodeIds) {
    const directory = `${NODE_DIR}/node${id}`;
    if (!tree.enterDirectory(directory, 'required')) continue;
    // The list first, as the kernel documents it; old kernels (before 2.6.28) only have the mask.
    const listedCpus = readCpuSet(tree, directory, [NODE_CPUS], 'list', online) ?? [];
    const row = tree.parse(`${directory}/distance`, parseDistanceRow, 'required');
    if (row !== undefined) rows.set(id, row);
    nodes.push({
      id,
      cpus: [],
      listedCpus,
      memoryKb: tree.parse(`${directory}/meminfo`, parseMemTotalKb, 'required') ?? null,
      distances: [],
      cpuInitiators: readCpuInitiators(tree, directory),
    });
  }
  for (const missing of (nodeMasks.online ?? []).filter((id) => !nodeIds.includes(id))) {
    tree.warn(`${NODE_DIR}/node${missing}`, 'missing although node/online lists it');
  }
  const columns = distanceColumns(
    nodeMasks,
    nodes.map((node) => node.id),
  );
  for (const node of nodes) {
    const row = rows.get(node.id);
    if (row !== undefined) node.distances = matchDistances(tree, node.id, row, columns);
  }
  return { nodes, nodeMasks, implicitNode: false };
}

function implicitNode(cpus: LogicalCpu[]): NumaNode {
  return {
    id: 0,
    cpus: [], // filled with the online ones, like any node's, by assignCpusToNodes
    listedCpus: cpus.map((cpu) => cpu.id),
    memoryKb: null,
    distances: [{ node: 0, distance: LOCAL_DISTANCE }],
    cpuInitiators: [],
  };
}

function readCpuInitiators(tree: SysfsTree, nodeDirectory: string): number[] {
  // access1 is the "CPU initiators only" class; only the entry names are read, the links not followed.
  const directory = `${nodeDirectory}/access1/initiators`;
  if (!tree.enterDirectory(`${nodeDirectory}/access1`, 'optional')) return [];
  if (!tree.enterDirectory(directory, 'optional')) return [];
  return numberedEntries(tree, directory, 'node');
}

/** Node-id lists a distance row may be indexed by, the kernel's own (online nodes) first. */
type DistanceColumns = Array<{ ids: number[]; source: string }>;

function distanceColumns(masks: NodeMasks, directoryIds: number[]): DistanceColumns {
  // The kernel prints one distance per online node; dumps edited by hand (or old kernels without
  // node/online) may only agree with the node directories or node/possible.
  const columns: DistanceColumns = [];
  if (masks.online !== null) columns.push({ ids: masks.online, source: 'node/online' });
  columns.push({ ids: directoryIds, source: 'the nodeN directories' });
  if (masks.possible !== null) columns.push({ ids: masks.possible, source: 'node/possible' });
  return columns;
}

function matchDistances(
  tree: SysfsTree,
  id: number,
  row: number[],
  columns: DistanceColumns,
): NodeDistance[] {
  const path = `${NODE_DIR}/node${id}/distance`;
  const [expected] = columns;
  const match = columns.find((candidate) => candidate.ids.length === row.length);
  if (match === undefined) {
    tree.warn(
      path,
      `${row.length} entries match no node list (${expected?.source ?? 'none'} has ${expected?.ids.length ?? 0})`,
    );
    return [];
  }
  if (match !== expected && expected?.source === 'node/online') {
    tree.warn(
      path,
      `${row.length} entries but node/online lists ${expected.ids.length}; matched to ${match.source}`,
    );
  }
  return row.map((distance, index) => ({ node: match.ids[index] ?? 0, distance }));
}

function assignCpusToNodes(tree: SysfsTree, cpus: LogicalCpu[], nodes: NumaNode[], implicit: boolean): void {
  const byId = new Map(cpus.map((cpu) => [cpu.id, cpu]));
  for (const node of nodes) {
    for (const id of node.listedCpus) {
      const cpu = byId.get(id);
      if (cpu === undefined) continue; // listed but not present (hot-pluggable slots, trimmed dumps)
      if (cpu.node !== null && cpu.node !== node.id) {
        tree.warn(`${NODE_DIR}/node${node.id}`, `lists cpu${id}, already listed by node${cpu.node}`);
        continue;
      }
      cpu.node = node.id;
      if (cpu.online) node.cpus.push(id);
    }
  }
  const homeless = cpus.filter((cpu) => cpu.online && cpu.node === null).map((cpu) => cpu.id);
  if (homeless.length > 0 && !implicit) {
    tree.warn(NODE_DIR, `online CPUs ${formatCpuList(homeless)} are listed by no node`);
  }
}

function readCaches(tree: SysfsTree, onlineCpus: number[], online: ReadonlySet<number>): CpuCache[] {
  const caches = new Map<string, CpuCache>();
  for (const id of onlineCpus) {
    // Some architectures (ia64 here) have no cache/ at all: not a defect.
    const directory = `${CPU_DIR}/cpu${id}/cache`;
    if (!tree.enterDirectory(directory, 'optional')) continue;
    for (const index of numberedEntries(tree, directory, 'index')) {
      const indexDirectory = `${directory}/index${index}`;
      if (!tree.enterDirectory(indexDirectory, 'required')) continue;
      const level = tree.parse(
        `${indexDirectory}/level`,
        (text) => parseSysfsInt(text, 1, MAX_CACHE_LEVEL),
        'required',
      );
      const type = tree.parse(`${indexDirectory}/type`, parseCacheType, 'required');
      const sizeBytes = tree.parse(`${indexDirectory}/size`, parseCacheSizeBytes, 'required') ?? null;
      const shared = readCpuSet(tree, indexDirectory, [CACHE_CPUS], 'map', online);
      if (level === undefined || type === undefined || shared === undefined) continue;
      const cpus = shared.filter((cpu) => online.has(cpu));
      if (cpus.length === 0) continue;
      // Every CPU sharing a cache describes it again; one entry per distinct CPU set is kept.
      const key = `${level} ${type} ${formatCpuList(cpus)}`;
      if (!caches.has(key)) caches.set(key, { level, type, sizeBytes, cpus });
    }
  }
  const typeOrder = { data: 0, instruction: 1, unified: 2 } as const;
  return [...caches.values()].sort(
    (a, b) =>
      a.level - b.level || typeOrder[a.type] - typeOrder[b.type] || (a.cpus[0] ?? 0) - (b.cpus[0] ?? 0),
  );
}

function packageKey(cpu: LogicalCpu): string {
  // The id when the kernel knows it; otherwise the package's CPU set tells packages apart, as hwloc does.
  if (cpu.package !== null) return `id ${cpu.package}`;
  if (cpu.packageSiblings.length > 0) return `cpus ${formatCpuList(cpu.packageSiblings)}`;
  return 'unknown';
}

function coreKey(cpu: LogicalCpu): string {
  // core_id repeats across dies of one package (e.g. Opteron 6200), so the sibling set identifies a
  // core. Siblings with different core_ids are the two integer cores of an AMD Bulldozer compute unit
  // (the kernel calls them threads): they are separate cores, as hwloc counts them.
  if (cpu.threadSiblings.length > 0)
    return `cpus ${formatCpuList(cpu.threadSiblings)} core ${cpu.core ?? '?'}`;
  if (cpu.core !== null) return `${packageKey(cpu)} die ${cpu.die ?? '?'} core ${cpu.core}`;
  return `cpu ${cpu.id}`;
}

/** Online CPUs grouped by a key; each CPU lands in exactly one group even when sibling files disagree. */
function groupOnline(cpus: LogicalCpu[], key: (cpu: LogicalCpu) => string): LogicalCpu[][] {
  const groups = new Map<string, LogicalCpu[]>();
  for (const cpu of cpus) {
    if (!cpu.online) continue;
    const members = groups.get(key(cpu));
    if (members === undefined) groups.set(key(cpu), [cpu]);
    else members.push(cpu);
  }
  return [...groups.values()];
}

function groupPackages(cpus: LogicalCpu[]): CpuPackage[] {
  return groupOnline(cpus, packageKey).map((members) => ({
    id: members[0]?.package ?? null,
    cpus: members.map((cpu) => cpu.id),
    nodes: [...new Set(members.flatMap((cpu) => (cpu.node === null ? [] : [cpu.node])))].sort(
      (a, b) => a - b,
    ),
  }));
}

function groupCores(cpus: LogicalCpu[]): CpuCore[] {
  return groupOnline(cpus, coreKey).map((members) => ({
    package: members[0]?.package ?? null,
    id: members[0]?.core ?? null,
    cpus: members.map((cpu) => cpu.id),
  }));
}
