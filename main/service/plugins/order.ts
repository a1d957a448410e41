/** The order plugins are applied in: each after the plugins it names in `after`, ties in the given order. */
export interface PluginOrder {
  order: string[];
  /** Plugins on a dependency cycle, each with the cycle it is on (e.g. `a → b → a`). */
  cycles: Map<string, string>;
  /** `after` entries that name a plugin which is not installed: ignored, and said in `plugin list`. */
  missing: Map<string, string[]>;
}

/** Topological order by `after` (Kahn's algorithm); a cycle is named, never broken silently. */
export function orderPlugins(plugins: readonly { name: string; after: readonly string[] }[]): PluginOrder {
  const known = new Set(plugins.map((p) => p.name));
  const missing = new Map<string, string[]>();
  const deps = new Map<string, string[]>();
  for (const p of plugins) {
    const absent = p.after.filter((a) => !known.has(a));
    if (absent.length > 0) missing.set(p.name, absent);
    deps.set(
      p.name,
      p.after.filter((a) => known.has(a)),
    );
  }
  const order: string[] = [];
  const placed = new Set<string>();
  for (let progress = true; progress;) {
    progress = false;
    for (const p of plugins) {
      if (placed.has(p.name) || !(deps.get(p.name) ?? []).every((d) => placed.has(d))) continue;
      order.push(p.name);
      placed.add(p.name);
      progress = true;
    }
  }
  const cycles = new Map<string, string>();
  for (const p of plugins) {
    if (placed.has(p.name)) continue;
    const cycle = cycleThrough(p.name, deps);
    cycles.set(
      p.name,
      cycle ??
        `it comes after a plugin on a dependency cycle (${(deps.get(p.name) ?? []).filter((d) => !placed.has(d)).join(', ')})`,
    );
  }
  return { order, cycles, missing };
}

/** The shortest cycle from name back to itself, as `a → b → a`, if name is on one. */
function cycleThrough(name: string, deps: Map<string, string[]>): string | undefined {
  const queue: string[][] = [[name]];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const path = queue.shift() as string[];
    const last = path[path.length - 1] as string;
    for (const next of deps.get(last) ?? []) {
      if (next === name) return `dependency cycle: ${[...path, name].join(' → ')}`;
      if (seen.has(next)) continue;
      seen.add(next);
      queue.push([...path, next]);
    }
  }
  return undefined;
}
