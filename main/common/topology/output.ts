// What `op-dbus topology` prints: the JSON document (--json) and a short human-readable table.

import { formatCpuList } from './cpulist.js';
import type { CacheType, Topology } from './topology.js';

/** The JSON document of `op-dbus topology --json`. */
export interface TopologyJson {
  nodes: Array<{
    id: number;
    cpus: number[];
    memory_kb: number | null;
    /** Distance to each node of `nodes`, in the same (ascending id) order; null where unknown. */
    distances: Array<number | null>;
  }>;
  packages: Array<{ id: number | null; cpus: number[]; nodes: number[] }>;
  cores: Array<{ package: number | null; id: number | null; cpus: number[] }>;
  caches: Array<{ level: number; type: CacheType; size_kb: number | null; cpus: number[] }>;
  offline_cpus: number[];
  warnings: string[];
}

/** The topology as the JSON document `op-dbus topology --json` prints. */
export function topologyJson(topology: Topology): TopologyJson {
  return {
    nodes: topology.nodes.map((node) => ({
      id: node.id,
      cpus: [...node.cpus],
      memory_kb: node.memoryKb,
      distances: topology.nodes.map(
        (other) => node.distances.find((entry) => entry.node === other.id)?.distance ?? null,
      ),
    })),
    packages: topology.packages.map((cpuPackage) => ({
      id: cpuPackage.id,
      cpus: [...cpuPackage.cpus],
      nodes: [...cpuPackage.nodes],
    })),
    cores: topology.cores.map((core) => ({ package: core.package, id: core.id, cpus: [...core.cpus] })),
    caches: topology.caches.map((cache) => ({
      level: cache.level,
      type: cache.type,
      size_kb: cache.sizeBytes === null ? null : cache.sizeBytes / 1024,
      cpus: [...cache.cpus],
    })),
    offline_cpus: [...topology.offlineCpus],
    warnings: [...topology.warnings],
  };
}

function formatKb(kb: number | null): string {
  if (kb === null) return '?';
  if (kb >= 1024 ** 2) return `${(kb / 1024 ** 2).toFixed(1)} GiB`;
  if (kb >= 1024) return `${(kb / 1024).toFixed(1)} MiB`;
  return `${kb} kB`;
}

function formatCacheSize(bytes: number | null): string {
  if (bytes === null) return '?';
  if (bytes >= 1024 ** 2 && bytes % 1024 ** 2 === 0) return `${bytes / 1024 ** 2} MiB`;
  return `${bytes / 1024} KiB`;
}

const CACHE_TYPE_SUFFIX: Readonly<Record<CacheType, string>> = { data: 'd', instruction: 'i', unified: '' };

/** Rows as left-aligned columns separated by two spaces. */
function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, column) => (widths[column] = Math.max(widths[column] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** A short human-readable summary of the topology: nodes, packages, caches, warnings. */
export function topologyText(topology: Topology): string {
  const list = (ids: readonly number[]) => (ids.length === 0 ? '-' : formatCpuList(ids));
  const lines: string[] = [];
  const offline =
    topology.offlineCpus.length === 0
      ? ''
      : `, ${topology.offlineCpus.length} offline (${list(topology.offlineCpus)})`;
  const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;
  lines.push(
    `${count(topology.packages.length, 'package')}, ${count(topology.nodes.length, 'NUMA node')}` +
      `${topology.implicitNode ? ' (implicit: kernel without NUMA)' : ''}, ${count(topology.cores.length, 'core')}, ` +
      `${count(topology.onlineCpus.length, 'online CPU')}${offline}`,
    '',
  );
  const json = topologyJson(topology);
  lines.push(
    ...table([
      ['node', 'cpus', 'memory', 'distances'],
      ...json.nodes.map((node) => [
        `${node.id}`,
        list(node.cpus),
        formatKb(node.memory_kb),
        node.distances.map((distance) => distance ?? '?').join(' '),
      ]),
    ]),
    '',
    ...table([
      ['package', 'cpus', 'nodes'],
      ...topology.packages.map((cpuPackage) => [
        `${cpuPackage.id ?? '?'}`,
        list(cpuPackage.cpus),
        list(cpuPackage.nodes),
      ]),
    ]),
  );
  // Caches are summarised per kind: "L2  1280 KiB  x6  2 CPUs each" rather than one line per instance.
  const kinds = new Map<string, { name: string; size: string; count: number; sharing: Set<number> }>();
  for (const cache of topology.caches) {
    const name = `L${cache.level}${CACHE_TYPE_SUFFIX[cache.type]}`;
    const size = formatCacheSize(cache.sizeBytes);
    const key = `${name} ${size}`;
    const kind = kinds.get(key) ?? { name, size, count: 0, sharing: new Set<number>() };
    kind.count += 1;
    kind.sharing.add(cache.cpus.length);
    kinds.set(key, kind);
  }
  if (kinds.size > 0) {
    lines.push(
      '',
      ...table([
        ['cache', 'size', 'count', 'shared by'],
        ...[...kinds.values()].map((kind) => [
          kind.name,
          kind.size,
          `x${kind.count}`,
          `${[...kind.sharing].sort((a, b) => a - b).join('/')} CPU${[...kind.sharing].join() === '1' ? '' : 's'} each`,
        ]),
      ]),
    );
  }
  if (topology.warnings.length > 0)
    lines.push('', 'warnings:', ...topology.warnings.map((warning) => `  ${warning}`));
  return `${lines.join('\n')}\n`;
}
