// Public API of the CPU/NUMA topology reader (issue 6).

export { readTopology } from './sysfs-reader.js';
export { topologyJson, topologyText } from './output.js';
export type { TopologyJson } from './output.js';
export { nodeLocalCpus } from './topology.js';
export type {
  CacheType,
  CpuCache,
  CpuCore,
  CpuPackage,
  LogicalCpu,
  NodeDistance,
  NodeMasks,
  NumaNode,
  Topology,
} from './topology.js';
export { MAX_CPU_ID, formatCpuList, parseCpuList, parseCpuMap } from './cpulist.js';
