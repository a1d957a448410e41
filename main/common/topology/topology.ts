// The CPU/NUMA topology of a machine as read from sysfs. Ids are the kernel's (OS) ids; lists of ids
// are sorted ascending. A value the kernel reports as unknown (-1) or that could not be read is null.

import type { CacheType } from './sysfs-text.js';

export type { CacheType } from './sysfs-text.js';

/** Distance from one NUMA node to another, as in the node's `distance` file (10 = local). */
export interface NodeDistance {
  node: number;
  distance: number;
}

/** A NUMA node (a `node/nodeN` directory, or the implicit node 0 of a kernel without NUMA). */
export interface NumaNode {
  id: number;
  /** The node's CPUs that are online: the ones anything can run on. */
  cpus: number[];
  /** The node's CPUs as the kernel lists them (cpulist, else cpumap); may name offline or absent CPUs. */
  listedCpus: number[];
  /** MemTotal of the node's meminfo; 0 for a memory-less node, null when unreadable. */
  memoryKb: number | null;
  /** Distances to the nodes the `distance` row names; empty when it could not be read or matched. */
  distances: NodeDistance[];
  /**
   * Nodes whose CPUs have the best access to this node's memory (`access1/initiators`, from the
   * firmware's HMAT). It places a node without CPUs (NVDIMM, CXL or HBM memory) near some CPUs.
   */
  cpuInitiators: number[];
}

/** The node-wide masks under `node/`; null where the kernel does not have the file (older kernels). */
export interface NodeMasks {
  online: number[] | null;
  possible: number[] | null;
  hasCpu: number[] | null;
  hasMemory: number[] | null;
  hasNormalMemory: number[] | null;
}

/** One logical CPU (hardware thread, hwloc's PU): a `cpu/cpuN` directory. */
export interface LogicalCpu {
  id: number;
  online: boolean;
  /** The node whose CPU list names it; null when none does. */
  node: number | null;
  /** physical_package_id; null when -1 (unknown to the kernel, e.g. POWER LPARs) or unreadable. */
  package: number | null;
  die: number | null;
  cluster: number | null;
  core: number | null;
  /** CPUs of the same core (core_cpus / thread_siblings), as the kernel lists them. */
  threadSiblings: number[];
  /** CPUs of the same package (package_cpus / core_siblings), as the kernel lists them. */
  packageSiblings: number[];
}

/** A processor package (socket). */
export interface CpuPackage {
  /** physical_package_id; null when the kernel does not know it (packages are then told apart by their CPU sets). */
  id: number | null;
  /** Online CPUs of the package. */
  cpus: number[];
  /** Nodes that hold any of the package's CPUs. */
  nodes: number[];
}

/** A physical core: online CPUs that share its execution units. */
export interface CpuCore {
  package: number | null;
  /** core_id; unique only within a package (and die), and repeated across dies on multi-die packages. */
  id: number | null;
  cpus: number[];
}

/** A CPU cache instance, once per distinct set of CPUs sharing it. */
export interface CpuCache {
  level: number;
  type: CacheType;
  /** Size in bytes; null when the size attribute is missing or unreadable. */
  sizeBytes: number | null;
  /** Online CPUs sharing this cache. */
  cpus: number[];
}

/** Everything readTopology learnt about a machine, and what it could not read. */
export interface Topology {
  /** NUMA nodes in ascending id order. */
  nodes: NumaNode[];
  nodeMasks: NodeMasks;
  /** True when there was no `node/nodeN` directory: one node 0 with all CPUs stands in (kernel without NUMA). */
  implicitNode: boolean;
  /** Every CPU with a `cpu/cpuN` directory (the present ones), in id order. */
  cpus: LogicalCpu[];
  onlineCpus: number[];
  /** Present CPUs that are not online (hot-unplugged or disabled). */
  offlineCpus: number[];
  /** cpu/possible, null where the kernel does not have it. */
  possibleCpus: number[] | null;
  packages: CpuPackage[];
  cores: CpuCore[];
  caches: CpuCache[];
  /** One line per file that was missing, unreadable or garbled, naming it relative to the sysfs root. */
  warnings: string[];
}

/**
 * The online CPUs closest to a node's memory: its own CPUs, or for a node without CPUs those of its
 * HMAT initiator nodes (empty when the firmware says nothing, e.g. GPU memory placed by PCI locality).
 */
export function nodeLocalCpus(topology: Topology, node: NumaNode): number[] {
  if (node.cpus.length > 0) return node.cpus;
  const local = new Set<number>();
  for (const initiator of topology.nodes) {
    if (node.cpuInitiators.includes(initiator.id)) for (const cpu of initiator.cpus) local.add(cpu);
  }
  return [...local].sort((a, b) => a - b);
}
