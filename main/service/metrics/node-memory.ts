import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface NodeMemory {
  id: number;
  total_kb: number;
  free_kb: number;
}

/**
 * Memory per NUMA node from `<sysfs>/devices/system/node/node<N>/meminfo`; a kernel without NUMA
 * (no node directories) is one node 0 with /proc/meminfo's numbers.
 */
export function readNodeMemory(sysfsRoot = '/sys', procMeminfo = '/proc/meminfo'): NodeMemory[] {
  const base = join(sysfsRoot, 'devices/system/node');
  const nodes: NodeMemory[] = [];
  if (existsSync(base)) {
    for (const entry of readdirSync(base)) {
      const m = /^node(\d+)$/.exec(entry);
      if (m === null) continue;
      const text = readText(join(base, entry, 'meminfo'));
      if (text === undefined) continue;
      nodes.push({ id: Number(m[1]), total_kb: field(text, 'MemTotal'), free_kb: field(text, 'MemFree') });
    }
  }
  if (nodes.length > 0) return nodes.sort((a, b) => a.id - b.id);
  const text = readText(procMeminfo) ?? '';
  return [
    {
      id: 0,
      total_kb: field(text, 'MemTotal'),
      free_kb: field(text, 'MemAvailable') || field(text, 'MemFree'),
    },
  ];
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** `Node 0 MemFree:  123 kB` or `MemFree:  123 kB` → 123; 0 when absent. */
function field(text: string, name: string): number {
  const m = new RegExp(`(?:^|\\n)(?:Node \\d+ )?${name}:\\s+(\\d+) kB`).exec(text);
  return m?.[1] !== undefined ? Number(m[1]) : 0;
}
