import { execFile } from 'node:child_process';

// rtnetlink through iproute2's `ip -json`, always with an argument array (never a shell string):
// links, IPv4 addresses, the default route, Linux bridges. The plugin runs in the core's network
// namespace, so this is the host's network.

export interface Link {
  name: string;
  /** linkinfo's kind: "bridge", "veth", "tun", "openvswitch", ... ("" for a plain device). */
  kind: string;
  master?: string;
  up: boolean;
}

/** Runs `ip ARGS`; rejects with ip's own message. */
export function ip(args: readonly string[], signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'ip',
      [...args],
      { encoding: 'utf8', timeout: 15_000, ...(signal ? { signal } : {}) },
      (error, stdout, stderr) => {
        if (error === null) resolve(stdout);
        else reject(new Error(`ip ${args.join(' ')}: ${stderr.trim() || error.message}`));
      },
    );
  });
}

async function ipJson(args: readonly string[]): Promise<unknown[]> {
  const out = (await ip(['-json', ...args])).trim();
  if (out === '') return [];
  const parsed: unknown = JSON.parse(out);
  return Array.isArray(parsed) ? parsed : [];
}

/** Every link of the namespace, by name. */
export async function links(): Promise<Map<string, Link>> {
  const out = new Map<string, Link>();
  for (const raw of await ipJson(['-details', 'link', 'show'])) {
    const l = raw as {
      ifname?: string;
      master?: string;
      flags?: string[];
      linkinfo?: { info_kind?: string };
    };
    if (typeof l.ifname !== 'string') continue;
    out.set(l.ifname, {
      name: l.ifname,
      kind: l.linkinfo?.info_kind ?? '',
      ...(typeof l.master === 'string' ? { master: l.master } : {}),
      up: (l.flags ?? []).includes('UP'),
    });
  }
  return out;
}

/** The IPv4 addresses of each interface, as "ip/prefix" (sorted). */
export async function ipv4Addresses(): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const raw of await ipJson(['-4', 'address', 'show'])) {
    const a = raw as {
      ifname?: string;
      addr_info?: { family?: string; local?: string; prefixlen?: number }[];
    };
    if (typeof a.ifname !== 'string') continue;
    const list = (a.addr_info ?? [])
      .filter((i) => i.family === 'inet' && typeof i.local === 'string')
      .map((i) => `${i.local ?? ''}/${i.prefixlen ?? 32}`)
      .sort();
    out.set(a.ifname, list);
  }
  return out;
}

/** The IPv4 default route's gateway and device, if there is one. */
export async function defaultRoute(): Promise<{ gateway: string; dev: string } | undefined> {
  for (const raw of await ipJson(['-4', 'route', 'show', 'default'])) {
    const r = raw as { gateway?: string; dev?: string };
    if (typeof r.gateway === 'string' && typeof r.dev === 'string') return { gateway: r.gateway, dev: r.dev };
  }
  return undefined;
}
