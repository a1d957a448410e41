import { z } from 'zod';
import { pointer } from '../../main/sdk/index.js';
import { publicKeyOf, readKeyFile, resolveKeyFile } from './keys.js';

// The section's two forms and what each means for one node: `interfaces` spells out every peer;
// `mesh` lists the nodes once, and each node derives its peers from it (every other node, allowed
// IP = its address), so the same document is applied on every node and only `self` differs, or not
// even that: without `self`, the node is the one whose public key is the host's own.

const KEY_SHAPE = /^[A-Za-z0-9+/]{43}=$/;
const IPV4 = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}';
const IPV6 = '[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*';
const CIDR = new RegExp(`^(${IPV4}/(3[0-2]|[12]?\\d)|${IPV6}/(12[0-8]|1[01]\\d|[1-9]?\\d))$`);
const ENDPOINT = new RegExp(`^(${IPV4}|\\[${IPV6}\\]):([1-9]\\d{0,4})$`);

const PublicKey = z.string().regex(KEY_SHAPE).meta({
  'x-error': 'not a WireGuard public key (44 characters of base64 ending in "=", as `wg pubkey` prints)',
});
const Cidr = z
  .string()
  .regex(CIDR)
  .meta({ 'x-error': 'not an address with a prefix length, e.g. "10.8.0.1/24" or "fd00::1/64"' });
const Endpoint = z
  .string()
  .regex(ENDPOINT)
  .meta({ 'x-error': 'not an endpoint "IPv4:port" or "[IPv6]:port" (host names are not resolved)' });
const KeyFile = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^[^\0\n]+$/)
  .describe(
    "A key file: absolute, or a name looked up in the core's key directories ([plugins.wireguard] key_dirs).",
  );
const Port = z.number().int().min(1).max(65535);
const Keepalive = z.number().int().min(0).max(65535);
const Mtu = z.number().int().min(576).max(65535);
const InterfaceName = z
  .string()
  .regex(/^[A-Za-z0-9_=+.-]{1,15}$/)
  .meta({ 'x-error': 'not a network interface name (1-15 letters, digits or _=+.-)' });
const NodeName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/);

const Peer = z
  .object({
    public_key: PublicKey,
    endpoint: Endpoint.optional(),
    allowed_ips: z.array(Cidr).max(4096).optional(),
    persistent_keepalive: Keepalive.optional(),
    preshared_key_file: KeyFile.optional(),
    // reported by query as an opaque digest; a document may not carry a key itself
    preshared_key: z.never().optional().meta({
      'x-secret': true,
      description: 'query only: an opaque digest of the preshared key; documents name preshared_key_file',
    }),
  })
  .strict();

const Interface = z
  .object({
    private_key_file: KeyFile,
    listen_port: Port.optional(),
    address: z.array(Cidr).max(256).optional(),
    mtu: Mtu.optional(),
    peers: z.array(Peer).max(100_000).optional(),
  })
  .strict();

const MeshNode = z
  .object({
    name: NodeName,
    public_key: PublicKey,
    endpoint: Endpoint.optional(),
    address: Cidr.describe('The node\'s tunnel address with the mesh\'s prefix, e.g. "10.8.0.1/24"'),
    listen_port: Port.optional(),
  })
  .strict();

const Mesh = z
  .object({
    self: NodeName.optional().describe("This node's name; absent: the node whose public_key is this host's"),
    private_key_file: KeyFile.optional().describe('Default "<interface>.key" in the key directories'),
    mtu: Mtu.optional(),
    persistent_keepalive: Keepalive.optional().describe('For every peer (default 25)'),
    nodes: z.array(MeshNode).min(1).max(100_000),
  })
  .strict();

/** The `wireguard` section. */
export const WireguardSection = z
  .object({
    interfaces: z.record(InterfaceName, Interface).optional(),
    mesh: z.record(InterfaceName, Mesh).optional(),
  })
  .strict();
export type WireguardSection = z.infer<typeof WireguardSection>;

/** One peer as this node wants it, with where the document names it. */
export interface WantedPeer {
  label: string;
  at: string;
  public_key: string;
  endpoint?: string;
  allowed_ips: string[];
  persistent_keepalive?: number;
  presharedKeyFile?: string;
}

/** One interface as this node wants it: the expansion of either form. */
export interface WantedInterface {
  name: string;
  at: string;
  /** Where the private key's change is shown (the document's private_key_file, or the mesh). */
  keyAt: string;
  privateKeyFile: string;
  listen_port?: number;
  address?: string[];
  mtu?: number;
  peers: WantedPeer[];
  /** For a mesh: the node this host is. */
  self?: string;
}

/** An error in what the document means for this node (a mesh without this host), naming where. */
export class DesiredError extends Error {}

const DEFAULT_KEEPALIVE = 25;

/** What the section asks of this node, interface by interface, in document order. */
export function wantedInterfaces(section: WireguardSection, keyDirs: readonly string[]): WantedInterface[] {
  const out: WantedInterface[] = [];
  for (const [name, i] of Object.entries(section.interfaces ?? {})) {
    const at = pointer('plugins', 'wireguard', 'interfaces', name);
    const seen = new Map<string, number>();
    (i.peers ?? []).forEach((p, n) => {
      const dup = seen.get(p.public_key);
      if (dup !== undefined) throw new DesiredError(`${at}/peers/${n}: the public key of peer ${dup} again`);
      seen.set(p.public_key, n);
    });
    out.push({
      name,
      at,
      keyAt: `${at}/private_key_file`,
      privateKeyFile: resolveKeyFile(i.private_key_file, keyDirs),
      ...(i.listen_port !== undefined ? { listen_port: i.listen_port } : {}),
      ...(i.address !== undefined ? { address: i.address.map(normaliseAddress).sort() } : {}),
      ...(i.mtu !== undefined ? { mtu: i.mtu } : {}),
      peers: (i.peers ?? []).map((p, n) => ({
        label: p.public_key,
        at: `${at}/peers/${n}`,
        public_key: p.public_key,
        ...(p.endpoint !== undefined ? { endpoint: p.endpoint } : {}),
        allowed_ips: (p.allowed_ips ?? []).map(normaliseNetwork).sort(),
        ...(p.persistent_keepalive !== undefined && p.persistent_keepalive > 0
          ? { persistent_keepalive: p.persistent_keepalive }
          : {}),
        ...(p.preshared_key_file !== undefined
          ? { presharedKeyFile: resolveKeyFile(p.preshared_key_file, keyDirs) }
          : {}),
      })),
    });
  }
  for (const [name, m] of Object.entries(section.mesh ?? {})) {
    const at = pointer('plugins', 'wireguard', 'mesh', name);
    if (section.interfaces?.[name] !== undefined) {
      throw new DesiredError(`${at}: interface ${name} is named both in interfaces and in mesh`);
    }
    const privateKeyFile = resolveKeyFile(m.private_key_file ?? `${name}.key`, keyDirs);
    const self = selfNode(m, at, () => publicKeyOf(readKeyFile(privateKeyFile, keyDirs)));
    const me = m.nodes[self];
    if (me === undefined) throw new DesiredError(`${at}: no node ${self}`);
    const keepalive = m.persistent_keepalive ?? DEFAULT_KEEPALIVE;
    const seen = new Map<string, number>();
    m.nodes.forEach((n, i) => {
      const dup = seen.get(n.public_key) ?? seen.get(`name:${n.name}`);
      if (dup !== undefined)
        throw new DesiredError(
          `${at}/nodes/${i}: node ${n.name} repeats the name or public key of node ${dup}`,
        );
      seen.set(n.public_key, i);
      seen.set(`name:${n.name}`, i);
    });
    const port =
      me.listen_port ?? (me.endpoint !== undefined ? Number(/:(\d+)$/.exec(me.endpoint)?.[1]) : undefined);
    out.push({
      name,
      at,
      keyAt: `${at}/nodes/${self}/public_key`,
      privateKeyFile,
      ...(port !== undefined ? { listen_port: port } : {}),
      address: [normaliseAddress(me.address)],
      ...(m.mtu !== undefined ? { mtu: m.mtu } : {}),
      self: me.name,
      peers: m.nodes.flatMap((n, i) =>
        i === self
          ? []
          : [
              {
                label: n.name,
                at: `${at}/nodes/${i}`,
                public_key: n.public_key,
                ...(n.endpoint !== undefined ? { endpoint: n.endpoint } : {}),
                allowed_ips: [hostRoute(n.address)],
                ...(keepalive > 0 ? { persistent_keepalive: keepalive } : {}),
              },
            ],
      ),
    });
  }
  return out;
}

/** The index of this node in a mesh: by `self`, else by the host's own public key. */
function selfNode(m: z.infer<typeof Mesh>, at: string, ownKey: () => string): number {
  if (m.self !== undefined) {
    const i = m.nodes.findIndex((n) => n.name === m.self);
    if (i < 0) throw new DesiredError(`${at}/self: no node is named ${m.self}`);
    return i;
  }
  const key = ownKey();
  const i = m.nodes.findIndex((n) => n.public_key === key);
  if (i < 0) {
    throw new DesiredError(
      `${at}: this host's public key ${key} is none of the nodes'; add it as a node, or set self`,
    );
  }
  return i;
}

/** An interface address as `ip` prints it. */
function normaliseAddress(cidr: string): string {
  return cidr.toLowerCase();
}

/** A network as WireGuard keeps it: an IPv4 prefix with its host bits cleared. */
export function normaliseNetwork(cidr: string): string {
  const [ip, len] = cidr.toLowerCase().split('/');
  if (ip === undefined || len === undefined || ip.includes(':')) return cidr.toLowerCase();
  const bits = Number(len);
  const value = ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const mask = bits === 0 ? 0 : 2 ** 32 - 2 ** (32 - bits);
  const net = Number((BigInt(value) & BigInt(mask)).toString());
  return `${[24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.')}/${bits}`;
}

/** The one-address route of a node's tunnel address. */
function hostRoute(cidr: string): string {
  const ip = cidr.split('/')[0] ?? cidr;
  return `${ip.toLowerCase()}/${ip.includes(':') ? 128 : 32}`;
}
