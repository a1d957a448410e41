import type { Topology } from '../../common/topology/index.js';
import type { NodeMemory } from './node-memory.js';

export interface Placement {
  enabled: boolean;
  node: number | null;
  cpus: number[];
  reason: string;
}

/**
 * Where the core (and with it the cache and, later, the embedder) should run: the NUMA node with
 * CPUs and the most free memory, so what it caches is allocated near where it is read. With one
 * node there is nothing to choose, and no pinning: bench/ measured no gain from it on one node (native-pinning: 0.99x).
 */
export function choosePlacement(topology: Topology, memory: NodeMemory[], enabled: boolean): Placement {
  if (!enabled) return { enabled: false, node: null, cpus: [], reason: 'off (OP_DBUS_PLACEMENT=off)' };
  const candidates = topology.nodes
    .filter((n) => n.cpus.length > 0)
    .map((n) => ({ node: n, free: memory.find((m) => m.id === n.id)?.free_kb ?? 0 }));
  if (candidates.length <= 1) {
    const only = candidates[0]?.node;
    return {
      enabled: false,
      node: only?.id ?? null,
      cpus: only?.cpus ?? [],
      reason: 'one NUMA node with CPUs: nothing to choose, the scheduler keeps all CPUs',
    };
  }
  const best = candidates.reduce((a, b) => (b.free > a.free ? b : a));
  return {
    enabled: true,
    node: best.node.id,
    cpus: best.node.cpus,
    reason: `node ${best.node.id}: the most free memory (${Math.round(best.free / 1024)} MiB) of ${candidates.length} nodes with CPUs`,
  };
}
