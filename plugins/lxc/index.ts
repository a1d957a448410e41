import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import {
  definePlugin,
  InputError,
  pointer,
  sameJson,
  type Availability,
  type Change,
  type InputProblem,
  type PluginContext,
  type ResourceDiff,
  type SectionDiff,
  type StatePlugin,
  type VerifyResult,
} from '../../main/sdk/index.js';
import { lastValue, parseConfig, type Meta, type ParsedConfig } from './config-file.js';
import { containerStates, cgroupLayout, pool, readConfigs, swapAccounting } from './host.js';
import {
  createContainer,
  destroyContainer,
  modifyContainer,
  restoreContainer,
  snapshotOf,
  type Saved,
} from './lifecycle.js';
import { isSubvolume, readLimits, rootfsStorage, type RootfsStorage } from './rootfs.js';
import { resolveTemplate, storagesOf, TEMPLATE_ID } from './templates.js';

// The lxc plugin: the original project's container format (`containers: [{ id, veth, bridge,
// properties: { hostname, memory, cores, template, network_type } }]`, memory and cores as the
// strings it wrote or as numbers), plus what a Proxmox admin expects of `pct` (state, onboot,
// startup, ip/gw, nameserver, unprivileged, swap, rootfs, mp0..mp9), on real LXC with -P.

const label = '(?!-)[A-Za-z0-9-]{1,63}(?<!-)';
const HOSTNAME = new RegExp(`^${label}(\\.${label})*$`);
const IPV4 = '(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}';
const PATH = /^\/[^\s,]*$/;

/** Placeholders replaced in the JSON Schema by number-or-digits schemas (see numberLike). */
const NUMBER_LIKE: Record<string, { minimum: number; maximum: number; message: string }> = {
  memory: {
    minimum: 16,
    maximum: 4_194_304,
    message:
      'memory in MiB: a whole number of at least 16, as a number or a string of digits (e.g. 1024 or "1024")',
  },
  swap: {
    minimum: 0,
    maximum: 4_194_304,
    message:
      'swap in MiB: a whole number of at least 0, as a number or a string of digits (e.g. 512 or "512")',
  },
  cores: {
    minimum: 1,
    maximum: 8192,
    message: 'cores: a whole number of at least 1, as a number or a string of digits (e.g. 2 or "2")',
  },
};
const numberLike = (name: string): z.ZodType<number | string> =>
  z.union([z.int(), z.string()]).meta({ 'x-number-like': name });

const Mount = z.strictObject({
  volume: z
    .string()
    .regex(PATH)
    .meta({ 'x-error': 'an absolute host path without spaces or commas' })
    .describe(
      'The host directory (or file) bind-mounted into the container; under one of [config] mount_roots.',
    ),
  mp: z
    .string()
    .regex(PATH)
    .meta({ 'x-error': 'an absolute path inside the container, without spaces or commas' })
    .describe('Where it appears in the container (pct: mp=).'),
  ro: z.boolean().optional().describe('Read-only (pct: ro=1).'),
});

const MP_NAMES = ['mp0', 'mp1', 'mp2', 'mp3', 'mp4', 'mp5', 'mp6', 'mp7', 'mp8', 'mp9'] as const;
const mountPoints = Object.fromEntries(
  MP_NAMES.map((name, i) => [name, Mount.optional().describe(`Mount point ${i} (pct: --mp${i}).`)]),
) as Record<(typeof MP_NAMES)[number], z.ZodOptional<typeof Mount>>;

const Properties = z.strictObject({
  hostname: z
    .string()
    .max(63)
    .regex(HOSTNAME)
    .meta({
      'x-error': 'not a hostname (letters, digits and "-" in dot-separated labels of 1-63 characters)',
    })
    .optional()
    .describe('lxc.uts.name (pct: --hostname); default CT<id>.'),
  memory: numberLike('memory').optional().describe('Memory limit in MiB (pct: --memory); default 512.'),
  swap: numberLike('swap').optional().describe('Swap in MiB on top of memory (pct: --swap); default 512.'),
  cores: numberLike('cores')
    .optional()
    .describe('CPUs the container may use (pct: --cores); default: no limit.'),
  template: z
    .string()
    .regex(TEMPLATE_ID)
    .meta({ 'x-error': 'a Proxmox template id: storage:vztmpl/file.tar.zst (or .tar.xz, .tar.gz)' })
    .optional()
    .describe('The rootfs tarball a new container is unpacked from (pct create <vmid> <template>).'),
  network_type: z
    .enum(['none', 'bridge', 'netmaker'])
    .optional()
    .describe('none: loopback only; bridge: a veth on `bridge`; netmaker: a veth on the mesh bridge.'),
  state: z
    .enum(['running', 'stopped', 'absent'])
    .optional()
    .describe('running (default), stopped, or absent (destroyed: irreversible).'),
  onboot: z.boolean().optional().describe('lxc.start.auto (pct: --onboot).'),
  startup: z
    .strictObject({
      order: z.int().min(0).max(100_000).optional(),
      up: z.int().min(0).max(3600).optional(),
    })
    .optional()
    .describe('lxc.start.order and lxc.start.delay (pct: --startup order=,up=).'),
  ip: z
    .string()
    .regex(new RegExp(`^(dhcp|${IPV4}/([0-9]|[12][0-9]|3[0-2]))$`))
    .meta({ 'x-error': 'an IPv4 address with its prefix (10.0.0.2/24) or "dhcp"' })
    .optional()
    .describe('The address of eth0 (pct: --net0 ip=).'),
  gw: z
    .string()
    .regex(new RegExp(`^${IPV4}$`))
    .meta({ 'x-error': 'an IPv4 address' })
    .optional()
    .describe('The default gateway (pct: --net0 gw=).'),
  nameserver: z
    .string()
    .regex(new RegExp(`^${IPV4}$`))
    .meta({ 'x-error': 'an IPv4 address' })
    .optional()
    .describe("The container's /etc/resolv.conf (pct: --nameserver)."),
  unprivileged: z
    .boolean()
    .optional()
    .describe(
      "Root inside maps to an unprivileged host uid (pct: --unprivileged); default true, as Proxmox's.",
    ),
  rootfs: z
    .string()
    .regex(/^([A-Za-z][A-Za-z0-9_.-]*:)?[1-9][0-9]{0,5}$/)
    .meta({ 'x-error': 'a size in GiB, optionally after a storage name (pct: --rootfs local:8)' })
    .optional()
    .describe('The root disk size in GiB; bounded only where the storage can bound it (a directory cannot).'),
  ...mountPoints,
});

const Container = z.strictObject({
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/)
    .meta({ 'x-error': 'a container id: letters, digits, "_" and "-" (Proxmox uses its vmid, e.g. "100")' })
    .describe('The container name under the LXC path (Proxmox: the vmid).'),
  veth: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,15}$/)
    .meta({ 'x-error': 'an interface name: 1-15 bytes of letters, digits, "_", "." and "-"' })
    .optional()
    .describe('The host end of the veth pair (lxc.net.0.veth.pair).'),
  bridge: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,15}$/)
    .meta({ 'x-error': 'a bridge name: 1-15 bytes of letters, digits, "_", "." and "-"' })
    .optional()
    .describe('The bridge it joins: one of the net section, or one on the host (lxc.net.0.link).'),
  properties: Properties.optional(),
});

export const LxcSection = z.strictObject({
  containers: z.array(Container).max(100_000).optional(),
  prune: z
    .boolean()
    .optional()
    .describe('Destroy containers under the LXC path that the document does not name (irreversible).'),
});
export type LxcSection = z.infer<typeof LxcSection>;
type ContainerDoc = z.infer<typeof Container>;

/** The section's JSON Schema: number-or-digits fields as one schema, so a wrong value gets one clear message. */
function sectionSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(LxcSection, { io: 'input' }) as Record<string, unknown>;
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (node === null || typeof node !== 'object') return node;
    const o = node as Record<string, unknown>;
    const name = o['x-number-like'];
    if (typeof name === 'string') {
      const spec = NUMBER_LIKE[name];
      if (spec === undefined) throw new Error(`no number-like spec ${name}`);
      // one message whichever branch fails first (Ajv reports the first branch's error)
      return {
        ...(typeof o['description'] === 'string' ? { description: o['description'] } : {}),
        anyOf: [
          { type: 'integer', minimum: spec.minimum, maximum: spec.maximum, 'x-error': spec.message },
          {
            type: 'string',
            pattern: spec.minimum > 0 ? '^[1-9][0-9]{0,6}$' : '^[0-9]{1,7}$',
            'x-error': spec.message,
          },
        ],
      };
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, walk(v)]));
  };
  return walk(schema) as Record<string, unknown>;
}

export const MIB = 1024 * 1024;
type NetworkType = 'none' | 'bridge' | 'netmaker';

/** A container, normalised: what desired says with the defaults filled in, or what the host has. */
export interface Spec {
  id: string;
  veth?: string;
  bridge?: string;
  hostname: string;
  memory?: number;
  swap?: number;
  cores?: number;
  template?: string;
  network_type: NetworkType;
  state: 'running' | 'stopped' | 'absent';
  onboot: boolean;
  startup?: { order?: number; up?: number };
  ip?: string;
  gw?: string;
  nameserver?: string;
  unprivileged: boolean;
  rootfs?: string;
  mps: Record<string, { volume: string; mp: string; ro: boolean }>;
}

/** Fields compared between desired and current, with where each sits below the container. */
const FIELDS: { key: keyof Spec; at: string[]; restart: boolean; live?: boolean }[] = [
  { key: 'veth', at: ['veth'], restart: true },
  { key: 'bridge', at: ['bridge'], restart: true },
  { key: 'hostname', at: ['properties', 'hostname'], restart: false, live: true },
  { key: 'memory', at: ['properties', 'memory'], restart: false, live: true },
  { key: 'swap', at: ['properties', 'swap'], restart: false, live: true },
  { key: 'cores', at: ['properties', 'cores'], restart: false, live: true },
  { key: 'network_type', at: ['properties', 'network_type'], restart: true },
  { key: 'state', at: ['properties', 'state'], restart: false },
  { key: 'onboot', at: ['properties', 'onboot'], restart: false },
  { key: 'startup', at: ['properties', 'startup'], restart: false },
  { key: 'ip', at: ['properties', 'ip'], restart: true },
  { key: 'gw', at: ['properties', 'gw'], restart: true },
  { key: 'nameserver', at: ['properties', 'nameserver'], restart: false },
  { key: 'rootfs', at: ['properties', 'rootfs'], restart: false },
  { key: 'mps', at: ['properties'], restart: true },
];

const num = (v: number | string | undefined): number | undefined => (v === undefined ? undefined : Number(v));

/** The desired container with the defaults Proxmox uses (memory 512, swap 512, unprivileged, running). */
export function desiredSpec(c: ContainerDoc): Spec {
  const p = c.properties ?? {};
  const mps: Spec['mps'] = {};
  for (const name of MP_NAMES) {
    const m = p[name];
    if (m !== undefined) mps[name] = { volume: m.volume, mp: m.mp, ro: m.ro ?? false };
  }
  const spec: Spec = {
    id: c.id,
    hostname: p.hostname ?? `CT${c.id}`,
    memory: num(p.memory) ?? 512,
    swap: num(p.swap) ?? 512,
    network_type: p.network_type ?? (c.bridge !== undefined ? 'bridge' : 'none'),
    state: p.state ?? 'running',
    onboot: p.onboot ?? false,
    unprivileged: p.unprivileged ?? true,
    mps,
  };
  const cores = num(p.cores);
  if (cores !== undefined) spec.cores = cores;
  if (spec.network_type !== 'none') {
    if (c.veth !== undefined) spec.veth = c.veth;
    if (c.bridge !== undefined) spec.bridge = c.bridge;
    if (p.ip !== undefined) spec.ip = p.ip;
    if (p.gw !== undefined) spec.gw = p.gw;
  }
  if (p.template !== undefined) spec.template = p.template;
  if (p.startup !== undefined) spec.startup = { ...p.startup };
  if (p.nameserver !== undefined) spec.nameserver = p.nameserver;
  if (p.rootfs !== undefined) spec.rootfs = p.rootfs;
  return spec;
}

/** A container as its config file and `lxc-ls` describe it. */
export function currentSpec(id: string, config: ParsedConfig, lxcState: string | undefined): Spec {
  const meta: Meta = config.meta ?? {};
  const bytes = (key: string): number | undefined => {
    const v = lastValue(config, key);
    return v === undefined || !/^\d+$/.test(v) ? undefined : Number(v);
  };
  const memBytes = bytes('lxc.cgroup.memory.limit_in_bytes') ?? bytes('lxc.cgroup2.memory.max');
  const memsw = bytes('lxc.cgroup.memory.memsw.limit_in_bytes');
  const swap2 = bytes('lxc.cgroup2.memory.swap.max');
  const memory = memBytes === undefined ? undefined : Math.round(memBytes / MIB);
  let swap: number | undefined;
  if (memsw !== undefined && memBytes !== undefined) swap = Math.round((memsw - memBytes) / MIB);
  else if (swap2 !== undefined) swap = Math.round(swap2 / MIB);
  else if (typeof (meta as { swap?: unknown }).swap === 'number') swap = (meta as { swap: number }).swap;
  let cores: number | undefined;
  const quota = bytes('lxc.cgroup.cpu.cfs_quota_us');
  const period = bytes('lxc.cgroup.cpu.cfs_period_us');
  const max2 = /^(\d+) (\d+)$/.exec(lastValue(config, 'lxc.cgroup2.cpu.max') ?? '');
  if (quota !== undefined && period !== undefined && period > 0) cores = quota / period;
  else if (max2?.[1] !== undefined && max2[2] !== undefined) cores = Number(max2[1]) / Number(max2[2]);
  const netType = lastValue(config, 'lxc.net.0.type');
  const spec: Spec = {
    id,
    hostname: lastValue(config, 'lxc.uts.name') ?? id,
    network_type: netType === 'veth' ? (meta.network_type === 'netmaker' ? 'netmaker' : 'bridge') : 'none',
    state: lxcState === 'RUNNING' ? 'running' : 'stopped',
    onboot: lastValue(config, 'lxc.start.auto') === '1',
    unprivileged: config.entries.some((e) => e.key === 'lxc.idmap' && /^u\s+0\s/.test(e.value)),
    mps: {},
  };
  if (memory !== undefined) spec.memory = memory;
  if (swap !== undefined) spec.swap = swap;
  if (cores !== undefined) spec.cores = cores;
  if (netType === 'veth') {
    const veth = lastValue(config, 'lxc.net.0.veth.pair');
    const bridge = lastValue(config, 'lxc.net.0.link');
    const address = lastValue(config, 'lxc.net.0.ipv4.address');
    const gw = lastValue(config, 'lxc.net.0.ipv4.gateway');
    if (veth !== undefined) spec.veth = veth;
    if (bridge !== undefined) spec.bridge = bridge;
    if (meta.ip === 'dhcp') spec.ip = 'dhcp';
    else if (address !== undefined) spec.ip = address;
    if (gw !== undefined) spec.gw = gw;
  }
  const order = lastValue(config, 'lxc.start.order');
  const delay = lastValue(config, 'lxc.start.delay');
  if (order !== undefined || delay !== undefined) {
    spec.startup = {};
    if (order !== undefined) spec.startup.order = Number(order);
    if (delay !== undefined) spec.startup.up = Number(delay);
  }
  if (meta.template !== undefined) spec.template = meta.template;
  if (meta.nameserver !== undefined) spec.nameserver = meta.nameserver;
  if (meta.rootfs !== undefined) spec.rootfs = meta.rootfs;
  const byTarget = new Map(Object.entries(meta.mps ?? {}).map(([name, target]) => [target, name]));
  for (const e of config.entries) {
    if (!e.managed || e.key !== 'lxc.mount.entry') continue;
    const [volume, target, , options] = e.value.split(/\s+/);
    if (volume === undefined || target === undefined) continue;
    const mp = '/' + target;
    const name = byTarget.get(mp);
    if (name !== undefined) {
      spec.mps[name] = { volume, mp, ro: (options ?? '').split(',').includes('ro') };
    }
  }
  return spec;
}

/** The section's current state: what the plugin's query returns (the section's shape, numbers as numbers). */
function toSection(specs: Spec[]): LxcSection {
  return {
    containers: specs.map((s) => {
      const properties: Record<string, unknown> = {
        hostname: s.hostname,
        network_type: s.network_type,
        state: s.state,
        onboot: s.onboot,
        unprivileged: s.unprivileged,
      };
      for (const k of [
        'memory',
        'swap',
        'cores',
        'template',
        'startup',
        'ip',
        'gw',
        'nameserver',
        'rootfs',
      ] as const) {
        if (s[k] !== undefined) properties[k] = s[k];
      }
      Object.assign(properties, s.mps);
      return {
        id: s.id,
        ...(s.veth !== undefined ? { veth: s.veth } : {}),
        ...(s.bridge !== undefined ? { bridge: s.bridge } : {}),
        properties,
      } as ContainerDoc;
    }),
  };
}

/** The plugin's settings: [config] of plugin.toml with the core's `[plugins.lxc]` over it. */
export interface LxcSettings {
  lxcpath: string;
  storages: Record<string, string>;
  mountRoots: string[];
  cgroupPrefix: string | undefined;
  idmapBase: number;
  layout: 'v1' | 'v2';
  swapAccounting: boolean;
}

export function settingsOf(config: Readonly<Record<string, unknown>>): LxcSettings {
  const lxcpath = config['lxcpath'];
  if (typeof lxcpath !== 'string' || !lxcpath.startsWith('/'))
    throw new Error('[config] lxcpath must be an absolute directory');
  const roots = Array.isArray(config['mount_roots'])
    ? config['mount_roots'].filter((r): r is string => typeof r === 'string' && r.startsWith('/'))
    : [];
  const prefix = config['cgroup_prefix'];
  const base = config['idmap_base'];
  return {
    lxcpath,
    storages: storagesOf(config),
    mountRoots: roots,
    cgroupPrefix: typeof prefix === 'string' && /^[A-Za-z0-9_.-]+$/.test(prefix) ? prefix : undefined,
    idmapBase: typeof base === 'number' && Number.isInteger(base) && base >= 65536 ? base : 100_000,
    layout: cgroupLayout(),
    swapAccounting: swapAccounting(),
  };
}

/** Every container under the LXC path: one `lxc-ls -f`, then the config files read directly. */
export async function queryHost(s: LxcSettings, known?: Map<string, string>): Promise<Spec[]> {
  const states = known ?? (await containerStates(s.lxcpath));
  const texts = await readConfigs(s.lxcpath, states.keys());
  const out: Spec[] = [];
  for (const [id, state] of states) {
    const text = texts.get(id);
    if (text === undefined) continue;
    out.push(currentSpec(id, parseConfig(text), state));
  }
  await readLimits(s.lxcpath, out);
  return out.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
}

function specsOf(section: LxcSection): Spec[] {
  return (section.containers ?? []).map((c) => currentSpecFromDoc(c));
}

/** A current-state document (from query) back into specs: the same fields, numbers as numbers. */
function currentSpecFromDoc(c: ContainerDoc): Spec {
  const s = desiredSpec(c);
  const p = c.properties ?? {};
  // what query left out is absent, not a default
  if (p.memory === undefined) delete s.memory;
  if (p.swap === undefined) delete s.swap;
  if (p.unprivileged === undefined) s.unprivileged = false;
  if (c.veth === undefined) delete s.veth;
  return s;
}

const containerPointer = (i: number, ...rest: string[]): string =>
  pointer('plugins', 'lxc', 'containers', String(i), ...rest);

/** The bridges the document's net section declares (ctx.after.net.desired), by name. */
function declaredBridges(ctx: PluginContext): Set<string> {
  const names = new Set<string>();
  const desired = ctx.after['net']?.desired as Record<string, unknown> | undefined;
  if (desired === undefined || desired === null || typeof desired !== 'object') return names;
  const add = (v: unknown): void => {
    if (v !== null && typeof v === 'object' && typeof (v as { name?: unknown }).name === 'string')
      names.add((v as { name: string }).name);
  };
  for (const key of ['interfaces', 'bridges']) {
    const list = desired[key];
    if (Array.isArray(list)) list.forEach(add);
    else if (list !== null && typeof list === 'object') for (const n of Object.keys(list)) names.add(n);
  }
  return names;
}

/** Whether an interface of that name exists in the network namespace the core (and LXC) runs in. */
function bridgeOnHost(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

/** Why a mount point's host path may not be used, or undefined when it may. */
function mountProblem(volume: string, roots: readonly string[]): string | undefined {
  if (roots.length === 0)
    return `host path ${volume} is not allowed: no mount roots are configured ([plugins.lxc] mount_roots)`;
  let real: string;
  try {
    real = realpathSync(volume);
  } catch {
    return `host path ${volume} does not exist`;
  }
  const inside = roots.some((r) => {
    let root: string;
    try {
      root = realpathSync(r);
    } catch {
      return false;
    }
    return real === root || real.startsWith(root.endsWith('/') ? root : root + '/');
  });
  return inside ? undefined : `host path ${volume} is outside the allowed host roots (${roots.join(', ')})`;
}

/** The per-container diff; every problem in the desired state is collected and thrown as one InputError. */
export function diffSection(
  current: LxcSection,
  desired: LxcSection,
  ctx: Pick<PluginContext, 'after'>,
  s: LxcSettings,
  storage?: RootfsStorage,
): SectionDiff {
  const have = new Map(specsOf(current).map((c) => [c.id, c]));
  const problems: InputProblem[] = [];
  const resources: ResourceDiff[] = [];
  const seenIds = new Map<string, number>();
  const seenVeths = new Map<string, number>();
  let netDeclared: Set<string> | undefined;
  const containers = desired.containers ?? [];
  containers.forEach((doc, i) => {
    const first = seenIds.get(doc.id);
    if (first !== undefined) {
      problems.push({
        pointer: containerPointer(i, 'id'),
        message: `container ${doc.id}: duplicate id (also at ${containerPointer(first, 'id')})`,
      });
      return;
    }
    seenIds.set(doc.id, i);
    const want = desiredSpec(doc);
    for (const [name, spec] of Object.entries(NUMBER_LIKE)) {
      const v = want[name as 'memory' | 'swap' | 'cores'];
      if (v !== undefined && (v < spec.minimum || v > spec.maximum))
        problems.push({
          pointer: containerPointer(i, 'properties', name),
          message: `container ${doc.id}: ${spec.message}`,
        });
    }
    if (want.veth !== undefined) {
      const other = seenVeths.get(want.veth);
      if (other !== undefined)
        problems.push({
          pointer: containerPointer(i, 'veth'),
          message: `container ${doc.id}: veth ${want.veth} is also the veth of container ${containers[other]?.id ?? ''}`,
        });
      else seenVeths.set(want.veth, i);
    }
    const cur = have.get(doc.id);
    if (want.state === 'absent') {
      resources.push(
        cur === undefined
          ? { id: doc.id, action: 'noop', changes: [] }
          : {
              id: doc.id,
              action: 'delete',
              irreversible: true,
              changes: [{ path: containerPointer(i), before: toSection([cur]).containers?.[0], after: null }],
            },
      );
      return;
    }
    const changed = (f: (typeof FIELDS)[number]): boolean =>
      cur === undefined || !sameJson(cur[f.key] ?? null, want[f.key] ?? null);
    const needsNet = want.network_type !== 'none';
    if (needsNet && want.bridge === undefined)
      problems.push({
        pointer: containerPointer(i),
        message: `container ${doc.id}: network_type ${want.network_type} needs a bridge`,
      });
    if (
      needsNet &&
      want.bridge !== undefined &&
      (cur === undefined || changed(FIELDS[1] as (typeof FIELDS)[number]) || cur.state !== want.state)
    ) {
      netDeclared ??= declaredBridges(ctx as PluginContext);
      if (!netDeclared.has(want.bridge) && !bridgeOnHost(want.bridge))
        problems.push({
          pointer: containerPointer(i, 'bridge'),
          message: `container ${doc.id}: bridge "${want.bridge}" is neither declared in the document's net section nor on the host`,
        });
    }
    const why = rootfsProblem(want, cur, s, storage);
    if (why !== undefined)
      problems.push({
        pointer: containerPointer(i, 'properties', 'rootfs'),
        message: `container ${doc.id}: ${why}`,
      });
    for (const [name, m] of Object.entries(want.mps)) {
      if (cur !== undefined && sameJson(cur.mps[name] ?? null, m)) continue;
      const why = mountProblem(m.volume, s.mountRoots);
      if (why !== undefined)
        problems.push({
          pointer: containerPointer(i, 'properties', name, 'volume'),
          message: `container ${doc.id}: ${why}`,
        });
    }
    if (cur === undefined) {
      if (want.template === undefined) {
        problems.push({
          pointer: containerPointer(i, 'properties'),
          message: `container ${doc.id}: a new container needs a template (storage:vztmpl/file.tar.zst)`,
        });
      } else {
        const t = resolveTemplate(want.template, s.storages);
        if ('error' in t)
          problems.push({
            pointer: containerPointer(i, 'properties', 'template'),
            message: `container ${doc.id}: ${t.error}`,
          });
      }
      resources.push({
        id: doc.id,
        action: 'create',
        changes: [{ path: containerPointer(i), after: toSection([want]).containers?.[0] }],
      });
      return;
    }
    if (cur.unprivileged !== want.unprivileged)
      problems.push({
        pointer: containerPointer(i, 'properties', 'unprivileged'),
        message: `container ${doc.id}: unprivileged cannot change on an existing container (its rootfs is owned by other uids); destroy and create it again`,
      });
    if (want.template !== undefined && cur.template !== undefined && cur.template !== want.template)
      problems.push({
        pointer: containerPointer(i, 'properties', 'template'),
        message: `container ${doc.id}: it was created from ${cur.template}; a template applies only when a container is created`,
      });
    const changes: Change[] = [];
    for (const f of FIELDS) {
      if (!changed(f)) continue;
      if (f.key === 'mps') {
        for (const name of new Set([...Object.keys(cur.mps), ...Object.keys(want.mps)])) {
          if (sameJson(cur.mps[name] ?? null, want.mps[name] ?? null)) continue;
          changes.push({
            path: containerPointer(i, 'properties', name),
            before: cur.mps[name],
            after: want.mps[name],
          });
        }
        continue;
      }
      changes.push({ path: containerPointer(i, ...f.at), before: cur[f.key], after: want[f.key] });
    }
    resources.push({ id: doc.id, action: changes.length === 0 ? 'noop' : 'modify', changes });
  });
  if (desired.prune === true) {
    for (const [id, cur] of have) {
      if (seenIds.has(id)) continue;
      resources.push({
        id,
        action: 'delete',
        irreversible: true,
        changes: [
          { path: pointer('plugins', 'lxc', 'prune'), before: toSection([cur]).containers?.[0], after: null },
        ],
      });
    }
  }
  if (problems.length > 0) throw new InputError(problems);
  return { resources };
}

/**
 * Why a rootfs size the plan would set cannot be bounded on BTRFS (quotas off, or an existing
 * container whose rootfs is a plain directory), or undefined. Elsewhere a size is recorded, as before.
 */
function rootfsProblem(
  want: Spec,
  cur: Spec | undefined,
  s: LxcSettings,
  storage: RootfsStorage | undefined,
): string | undefined {
  if (want.rootfs === undefined || cur?.rootfs === want.rootfs) return undefined;
  if (storage === undefined || storage.kind !== 'btrfs') return undefined;
  const size = `rootfs ${want.rootfs.replace(/^.*:/, '')} GiB cannot be bounded`;
  if (!storage.quotas)
    return `${size}: ${storage.why} on the BTRFS filesystem ${storage.filesystem} that holds the LXC path ${s.lxcpath} (an admin enables them with \`btrfs quota enable\`; the plugin never does)`;
  const rootfs = join(s.lxcpath, want.id, 'rootfs');
  if (cur !== undefined && !isSubvolume(rootfs))
    return `${size}: its rootfs ${rootfs} is a plain directory, not a BTRFS subvolume (it was created before sizes were bounded); destroy and create it again`;
  return undefined;
}

/** The storage facts a plan needs, only when a container of the document sets a rootfs size. */
async function storageFor(desired: LxcSection, s: LxcSettings): Promise<RootfsStorage | undefined> {
  return (desired.containers ?? []).some((c) => c.properties?.rootfs !== undefined)
    ? rootfsStorage(s.lxcpath)
    : undefined;
}

/** Which fields of a modify need the running container restarted (network, mounts). */
export function needsRestart(cur: Spec, want: Spec): boolean {
  return FIELDS.some((f) => f.restart && !sameJson(cur[f.key] ?? null, want[f.key] ?? null));
}

export interface Checkpoint {
  lxcpath: string;
  containers: Record<string, Saved>;
}

const lxcPlugin: StatePlugin<LxcSection, Checkpoint> = {
  available(ctx): Promise<Availability> {
    try {
      settingsOf(ctx.config);
    } catch (e) {
      return Promise.resolve({ available: false, reason: e instanceof Error ? e.message : String(e) });
    }
    const dirs = (process.env['PATH'] ?? '/usr/bin:/bin').split(':');
    if (!dirs.some((d) => existsSync(`${d}/lxc-start`)))
      return Promise.resolve({ available: false, reason: 'LXC is not installed (no lxc-start on PATH)' });
    return Promise.resolve({ available: true });
  },

  async query(ctx) {
    return toSection(await queryHost(settingsOf(ctx.config)));
  },

  async diff(current, desired, ctx) {
    const s = settingsOf(ctx.config);
    return diffSection(current, desired, ctx, s, await storageFor(desired, s));
  },

  async checkpoint(desired, ctx) {
    // only the containers the apply will touch: the others' configs are not copied into the journal
    const s = settingsOf(ctx.config);
    const states = await containerStates(s.lxcpath);
    const current = toSection(await queryHost(s, states));
    const touched = diffSection(current, desired, ctx, s, await storageFor(desired, s))
      .resources.filter((r) => r.action !== 'noop')
      .map((r) => r.id);
    const containers: Record<string, Saved> = {};
    for (const id of touched) containers[id] = snapshotOf(s, id, states.get(id));
    return { lxcpath: s.lxcpath, containers };
  },

  async apply(diff, desired, ctx) {
    const s = settingsOf(ctx.config);
    const byId = new Map((desired.containers ?? []).map((c) => [c.id, desiredSpec(c)]));
    const work = diff.resources.filter((r) => r.action !== 'noop');
    const states = await containerStates(s.lxcpath);
    const texts = await readConfigs(
      s.lxcpath,
      work.map((r) => r.id),
    );
    let changed = 0;
    await pool(work, 4, async (r) => {
      ctx.signal.throwIfAborted();
      const want = byId.get(r.id);
      if (r.action === 'delete') {
        await destroyContainer(s, r.id, states.get(r.id), (m) => ctx.log.warn(m));
        ctx.progress(`container ${r.id} destroyed`);
      } else if (want === undefined) {
        throw new Error(`container ${r.id} is in the diff but not in the desired state`);
      } else if (r.action === 'create') {
        await createContainer(s, want, ctx.signal);
        ctx.progress(`container ${r.id} created${want.state === 'running' ? ' and started' : ''}`);
      } else {
        const text = texts.get(r.id);
        if (text === undefined) throw new Error(`container ${r.id} has no config file any more`);
        const cur = currentSpec(r.id, parseConfig(text), states.get(r.id));
        await modifyContainer(s, cur, want, parseConfig(text), ctx.signal);
        ctx.progress(`container ${r.id} changed`);
      }
      changed++;
    });
    return { changed };
  },

  async verify(desired, ctx) {
    const s = settingsOf(ctx.config);
    const have = new Map((await queryHost(s)).map((c) => [c.id, c]));
    const drift: VerifyResult['drift'] = [];
    const named = new Set<string>();
    (desired.containers ?? []).forEach((doc, i) => {
      if (named.has(doc.id)) return;
      named.add(doc.id);
      const want = desiredSpec(doc);
      const cur = have.get(doc.id);
      if (want.state === 'absent') {
        if (cur !== undefined)
          drift.push({ path: containerPointer(i), expected: 'absent', actual: 'present' });
        return;
      }
      if (cur === undefined) {
        drift.push({ path: containerPointer(i), expected: 'present', actual: 'absent' });
        return;
      }
      for (const f of FIELDS) {
        if (f.key === 'template' || sameJson(cur[f.key] ?? null, want[f.key] ?? null)) continue;
        if (f.key === 'mps') {
          for (const name of new Set([...Object.keys(cur.mps), ...Object.keys(want.mps)])) {
            if (!sameJson(cur.mps[name] ?? null, want.mps[name] ?? null))
              drift.push({
                path: containerPointer(i, 'properties', name),
                expected: want.mps[name] ?? null,
                actual: cur.mps[name] ?? null,
              });
          }
          continue;
        }
        drift.push({
          path: containerPointer(i, ...f.at),
          expected: want[f.key] ?? null,
          actual: cur[f.key] ?? null,
        });
      }
    });
    if (desired.prune === true) {
      const extra = [...have.keys()].filter((id) => !named.has(id));
      if (extra.length > 0)
        drift.push({ path: pointer('plugins', 'lxc', 'prune'), expected: [], actual: extra });
    }
    return { drift };
  },

  async rollback(checkpoint, ctx) {
    const s = settingsOf(ctx.config);
    if (checkpoint.lxcpath !== s.lxcpath) s.lxcpath = checkpoint.lxcpath;
    const states = await containerStates(s.lxcpath);
    const failures: string[] = [];
    await pool(Object.entries(checkpoint.containers), 4, async ([id, saved]) => {
      try {
        await restoreContainer(s, id, saved, states.get(id), (m) => ctx.log.warn(m));
      } catch (e) {
        failures.push(`${id}: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
    if (failures.length > 0) throw new Error(`rollback of ${failures.join('; ')}`);
  },
};

export default definePlugin({
  schema: sectionSchema(),
  plugin: lxcPlugin,
});
