import type { TopologyResponse } from '../../../main/common/contract/index.js';
import { formatCount, formatCpuList, formatKb } from './host-format.js';

/** One NUMA node as the panel lists it. */
export interface TopologyNodeRow {
  id: number;
  /** The node's CPUs as a kernel cpulist ("0-3,8-11"), or "none" for a CPU-less (memory-only) node. */
  cpuList: string;
  cpuCount: number;
  /** MemTotal of the node, readable ("8.59 GiB"), or "unknown" when the reader found none. */
  memory: string;
}

export interface DistanceCell {
  /** The SLIT distance as the kernel wrote it, or "?" where the row has no entry for that node. */
  text: string;
  local: boolean;
  /** 0 for the nearest remote distance in the matrix, 1 for the farthest: the cell's tint. */
  shade: number;
}

/** The node distance matrix, rows and columns in the order of the node list. */
export interface DistanceMatrix {
  ids: number[];
  rows: { id: number; cells: DistanceCell[] }[];
  /** Many nodes: the table is drawn compact (small type, narrow cells). */
  dense: boolean;
}

/** All caches of one kind and size, however many instances the machine has. */
export interface CacheRow {
  key: string;
  /** "L1d", "L1i", "L2", "L3" (a split cache above L1 would be "L2d" / "L2i"). */
  name: string;
  size: string;
  instances: number;
  /** How many CPUs share one instance: "1 CPU", "2 CPUs", or a range "8-9 CPUs" where they differ. */
  sharedBy: string;
}

export interface TopologyLayout {
  nodes: TopologyNodeRow[];
  /** Only where there is more than one node to compare. */
  distances: DistanceMatrix | null;
  counts: {
    nodes: number;
    packages: number;
    cores: number;
    /** CPUs the reader found online (in a core, a package or a node). */
    cpus: number;
    /** Hardware threads per core: "1", "2", or "1-2" on a hybrid machine; "unknown" without cores. */
    threadsPerCore: string;
  };
  caches: CacheRow[];
  /** The offline CPUs as a cpulist, or null when every CPU is online. */
  offline: string | null;
  warnings: string[];
}

/** A matrix with more nodes than this is drawn compact. */
export const DENSE_DISTANCES = 8;

/** What the topology panel shows, computed once from the core's answer. */
export function topologyLayout(t: TopologyResponse): TopologyLayout {
  const online = new Set<number>();
  for (const group of [...t.nodes, ...t.packages, ...t.cores]) for (const cpu of group.cpus) online.add(cpu);
  return {
    nodes: t.nodes.map((n) => ({
      id: n.id,
      cpuList: formatCpuList(n.cpus),
      cpuCount: new Set(n.cpus).size,
      memory: n.memory_kb === null ? 'unknown' : formatKb(n.memory_kb),
    })),
    distances: distanceMatrix(t.nodes),
    counts: {
      nodes: t.nodes.length,
      packages: t.packages.length,
      cores: t.cores.length,
      cpus: online.size,
      threadsPerCore: range(t.cores.map((c) => c.cpus.length)) ?? 'unknown',
    },
    caches: cacheRows(t.caches),
    offline: t.offline_cpus.length > 0 ? formatCpuList(t.offline_cpus) : null,
    warnings: t.warnings,
  };
}

/**
 * The distance matrix: row i, column j is node i's distance to node j. The contract lists each
 * node's distances in the order of `nodes` (null where sysfs had no entry). Null for a single node.
 */
export function distanceMatrix(nodes: TopologyResponse['nodes']): DistanceMatrix | null {
  if (nodes.length <= 1) return null;
  const remote = nodes.flatMap((n, i) =>
    n.distances.filter((d, j): d is number => d !== null && j !== i && j < nodes.length),
  );
  const lo = remote.length > 0 ? Math.min(...remote) : 0;
  const hi = remote.length > 0 ? Math.max(...remote) : 0;
  return {
    ids: nodes.map((n) => n.id),
    rows: nodes.map((n, i) => ({
      id: n.id,
      cells: nodes.map((_, j) => {
        const d = n.distances[j];
        const local = i === j;
        if (d === undefined || d === null) return { text: '?', local, shade: 0 };
        return { text: String(d), local, shade: local || hi === lo ? 0 : (d - lo) / (hi - lo) };
      }),
    })),
    dense: nodes.length > DENSE_DISTANCES,
  };
}

const TYPE_ORDER = { data: 0, instruction: 1, unified: 2 } as const;

/** The caches grouped by level, type and size: one row per kind, not one per instance. */
export function cacheRows(caches: TopologyResponse['caches']): CacheRow[] {
  const groups = new Map<string, { cache: TopologyResponse['caches'][number]; shares: number[] }>();
  for (const c of caches) {
    const key = `${c.level}/${c.type}/${c.size_kb ?? '?'}`;
    const g = groups.get(key);
    if (g === undefined) groups.set(key, { cache: c, shares: [c.cpus.length] });
    else g.shares.push(c.cpus.length);
  }
  return [...groups.entries()]
    .sort(
      ([, a], [, b]) =>
        a.cache.level - b.cache.level ||
        TYPE_ORDER[a.cache.type] - TYPE_ORDER[b.cache.type] ||
        (b.cache.size_kb ?? -1) - (a.cache.size_kb ?? -1),
    )
    .map(([key, { cache, shares }]) => {
      const shared = range(shares) ?? '0';
      return {
        key,
        name: cacheName(cache.level, cache.type),
        size: cache.size_kb === null ? 'unknown size' : formatCacheSize(cache.size_kb),
        instances: shares.length,
        sharedBy: `${shared} ${shared === '1' ? 'CPU' : 'CPUs'}`,
      };
    });
}

/** "L1d", "L1i", "L2", "L3": the usual names. */
export function cacheName(level: number, type: 'data' | 'instruction' | 'unified'): string {
  return `L${level}${type === 'data' ? 'd' : type === 'instruction' ? 'i' : ''}`;
}

/** A cache size as vendors print it: whole MiB where it is whole ("32 MiB"), else KiB ("1280 KiB"). */
export function formatCacheSize(kb: number): string {
  if (kb >= 1024 * 1024 && kb % (1024 * 1024) === 0) return `${formatCount(kb / (1024 * 1024))} GiB`;
  if (kb >= 1024 && kb % 1024 === 0) return `${formatCount(kb / 1024)} MiB`;
  return `${formatCount(kb)} KiB`;
}

/** "4", or "1-2" where the values differ; null for no values. */
function range(values: number[]): string | null {
  if (values.length === 0) return null;
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo === hi ? String(lo) : `${lo}-${hi}`;
}
