// An LXC container's `config` file as the plugin reads and writes it (LXC 5: `key = value` lines,
// `#` comments). The plugin owns one block, between two marker comments, holding every key it manages
// and a metadata comment (what LXC has no key for: the template it was made from, the network type,
// the nameserver, the rootfs size); the lines outside the block (rootfs path, id map, the base
// settings written at create, or anything an admin added by hand) are kept as they are.

export const BEGIN = '# op-dbus: begin (managed by the lxc plugin; edit the desired state, not these lines)';
export const END = '# op-dbus: end';
const META = '# op-dbus-meta: ';

/** What the plugin keeps about a container that LXC has no key for. */
export interface Meta {
  template?: string;
  network_type?: string;
  nameserver?: string;
  rootfs?: string;
  ip?: string;
  /** mp<N> → the container path of that mount entry */
  mps?: Record<string, string>;
}

export interface ParsedConfig {
  /** Every `key = value` line in order (multi-valued keys appear more than once). */
  entries: { key: string; value: string; managed: boolean }[];
  meta: Meta | undefined;
  /** The lines outside the managed block, verbatim. */
  outside: string[];
}

/** Parses a config file's text (never throws: an unreadable line is kept outside the block). */
export function parseConfig(text: string): ParsedConfig {
  const entries: ParsedConfig['entries'] = [];
  const outside: string[] = [];
  let meta: Meta | undefined;
  let inBlock = false;
  for (const line of text.split('\n')) {
    if (line === BEGIN) {
      inBlock = true;
      continue;
    }
    if (line === END) {
      inBlock = false;
      continue;
    }
    if (inBlock && line.startsWith(META)) {
      try {
        const m: unknown = JSON.parse(line.slice(META.length));
        if (m !== null && typeof m === 'object' && !Array.isArray(m)) meta = m as Meta;
      } catch {
        // a damaged metadata line: treated as absent, so the plan shows what it would rewrite
      }
      continue;
    }
    if (!inBlock) outside.push(line);
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const eq = t.indexOf('=');
    if (eq < 0) continue;
    entries.push({ key: t.slice(0, eq).trim(), value: t.slice(eq + 1).trim(), managed: inBlock });
  }
  while (outside.length > 0 && outside[outside.length - 1] === '') outside.pop();
  return { entries, meta, outside };
}

/** The last value of a single-valued key (LXC keeps the last one too). */
export function lastValue(c: ParsedConfig, key: string): string | undefined {
  for (let i = c.entries.length - 1; i >= 0; i--) {
    const e = c.entries[i];
    if (e?.key === key) return e.value;
  }
  return undefined;
}

/** Keys the plugin writes in its block: the same keys outside it are dropped when the block is written. */
export function isManagedKey(key: string): boolean {
  return (
    key === 'lxc.uts.name' ||
    key.startsWith('lxc.net.') ||
    key.startsWith('lxc.start.') ||
    key === 'lxc.cgroup.memory.limit_in_bytes' ||
    key === 'lxc.cgroup.memory.memsw.limit_in_bytes' ||
    key === 'lxc.cgroup2.memory.max' ||
    key === 'lxc.cgroup2.memory.swap.max' ||
    key === 'lxc.cgroup.cpu.cfs_quota_us' ||
    key === 'lxc.cgroup.cpu.cfs_period_us' ||
    key === 'lxc.cgroup2.cpu.max'
  );
}

/** The file's new text: the lines outside the block (less the managed keys), then the block. */
export function renderConfig(
  outside: readonly string[],
  block: readonly [string, string][],
  meta: Meta,
): string {
  const kept = outside.filter((line) => {
    const t = line.trim();
    if (t.startsWith('#')) return true;
    const eq = t.indexOf('=');
    return eq < 0 || !isManagedKey(t.slice(0, eq).trim());
  });
  const lines = [...kept, BEGIN, META + JSON.stringify(meta), ...block.map(([k, v]) => `${k} = ${v}`), END];
  return lines.join('\n') + '\n';
}
