import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Stats } from '../../common/contract/index.js';
import {
  currentCpu,
  getAffinity,
  nativeAvailability,
  pageCacheResidency,
  setAffinity,
} from '../../../native/index.js';
import { readTopology } from '../../common/topology/index.js';
import { readNodeMemory } from './node-memory.js';
import { choosePlacement, type Placement } from './placement.js';

export interface MetricsSource {
  dataDir: string;
  storage: { mode: 'btrfs' | 'plain'; filesystem: string };
  sysfsRoot?: string;
  /** Where the audit log's heavy work runs (AuditLog.mechanics); left out of the stats when absent. */
  audit?: () => NonNullable<Stats['audit']>;
  /** The embedding model, cache tiers and embedder process; undefined until the core has embedded. */
  embedding?: () => Stats['embedding'];
}

/** Chooses where the core runs from the topology and, when there is a choice, pins every thread there. */
export function placeCore(sysfsRoot: string, enabled: boolean): Placement {
  const placement = choosePlacement(readTopology(sysfsRoot), readNodeMemory(sysfsRoot), enabled);
  if (!placement.enabled) return placement;
  const native = nativeAvailability();
  if (!native.available) {
    return {
      ...placement,
      enabled: false,
      reason: `${placement.reason}; not pinned: native addon unavailable (${native.reason})`,
    };
  }
  setAffinity(placement.cpus, sysfsRoot);
  return placement;
}

/** One measurement of the core and its host: per-node memory, where the core runs, page-cache residency of its files. */
export function collectStats(src: MetricsSource, placement: Placement): Stats {
  const native = nativeAvailability();
  let core: Stats['core'] = { pid: process.pid, cpu: null, node: null, affinity: null, rss_kb: rssKb() };
  if (native.available) {
    const where = currentCpu();
    core = { ...core, cpu: where.cpu, node: where.node, affinity: getAffinity() };
  } else {
    core.unavailable = native.reason;
  }
  return {
    time: new Date().toISOString(),
    nodes: readNodeMemory(src.sysfsRoot),
    core,
    placement,
    files: coreFiles(src.dataDir).map(({ name, path }) => {
      const bytes = statSync(path).size;
      if (!native.available) return { name, bytes, resident: null, unavailable: native.reason };
      try {
        return { name, bytes, resident: pageCacheResidency(path).fraction };
      } catch (e) {
        return { name, bytes, resident: null, unavailable: e instanceof Error ? e.message : String(e) };
      }
    }),
    storage: src.storage,
    ...(src.audit !== undefined ? { audit: src.audit() } : {}),
    ...(src.embedding?.() !== undefined ? { embedding: src.embedding() } : {}),
  };
}

/** The audit log's SQLite files and whatever the cache holds, named relative to the data dir. */
function coreFiles(dataDir: string): { name: string; path: string }[] {
  const files: { name: string; path: string }[] = [];
  for (const name of ['audit/audit.sqlite', 'audit/audit.sqlite-wal']) {
    if (existsSync(join(dataDir, name))) files.push({ name, path: join(dataDir, name) });
  }
  const cache = join(dataDir, 'cache');
  if (existsSync(cache)) {
    for (const f of readdirSync(cache, { withFileTypes: true })) {
      if (f.isFile()) files.push({ name: `cache/${f.name}`, path: join(cache, f.name) });
    }
  }
  return files;
}

function rssKb(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m?.[1] !== undefined ? Number(m[1]) : Math.round(process.memoryUsage().rss / 1024);
}
