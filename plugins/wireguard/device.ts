import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { secretDigest } from './keys.js';

// The device side: `wg` (wireguard-tools) for WireGuard's own settings and `ip` for addresses and
// MTU, always with argument arrays. `wg` is the one code path for the kernel module (netlink) and
// for userspace implementations (the UAPI socket <if>.sock in /var/run/wireguard, which it tries
// first): the plugin never speaks either protocol itself. Keys go to `wg` on stdin, never as
// arguments, and the private key `wg show dump` prints is dropped here, field by field.

/** Where the tools are and how the interfaces are made. */
export interface DeviceTools {
  /**
   * The UAPI socket directory when it is not /var/run/wireguard (the development host's): `wg` and
   * wireguard-go hard-code that path, so they run in a mount namespace where it is bound there.
   */
  uapiDir?: string;
  /** How a missing interface is created: kernel (`ip link add type wireguard`), wireguard-go, or auto (kernel, else wireguard-go). */
  implementation: 'auto' | 'kernel' | 'wireguard-go';
  /** Aborts a running tool (the apply's signal). */
  signal?: AbortSignal;
}

export interface DevicePeer {
  public_key: string;
  endpoint?: string;
  allowed_ips: string[];
  persistent_keepalive?: number;
  /** An opaque digest (secretDigest) of the preshared key, when one is set; never the key. */
  preshared_key?: string;
}

/** One interface as the device has it, without its private key. */
export interface DeviceInterface {
  public_key?: string;
  listen_port: number;
  address: string[];
  mtu?: number;
  peers: DevicePeer[];
}

/** What `wg syncconf` is given for one interface: secrets as Buffers, written to its stdin only. */
export interface DeviceConfig {
  privateKey?: Buffer;
  listenPort?: number;
  peers: {
    public_key: string;
    /** 'keep': leave the device's as it is (a rollback that lost it). */
    presharedKey?: Buffer | 'keep';
    endpoint?: string;
    allowed_ips: string[];
    persistent_keepalive?: number;
  }[];
}

const ZERO_KEY = Buffer.alloc(32);
const SOCKET_DIR = '/var/run/wireguard';

/** A tool that failed: its stderr, with every secret it was given blanked out. */
export class DeviceError extends Error {}

/** Runs a tool with an argument array and optional stdin; resolves with stdout. */
export function runTool(
  tools: DeviceTools,
  command: string,
  args: readonly string[],
  input?: Buffer,
  secrets: readonly Buffer[] = [],
): Promise<string> {
  const [cmd, ...argv] = wrapped(tools, command, args, input !== undefined);
  return new Promise((resolveRun, rejectRun) => {
    const child = spawn(cmd ?? command, argv, {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(tools.signal !== undefined ? { signal: tools.signal } : {}),
      timeout: 30_000,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => rejectRun(new DeviceError(`${command}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolveRun(Buffer.concat(out).toString('utf8'));
      else {
        const why = blank(Buffer.concat(err).toString('utf8').trim(), secrets) || `exit ${code ?? signal}`;
        rejectRun(new DeviceError(`${command} ${args.join(' ')}: ${why}`));
      }
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

/** wg and wireguard-go run where /var/run/wireguard is the configured socket directory. */
function wrapped(tools: DeviceTools, command: string, args: readonly string[], stdin: boolean): string[] {
  // Node's stdin pipe is a socket, which `wg` cannot open as /dev/stdin: cat copies it into a real pipe
  const run = stdin ? 'cat | "$@"' : 'exec "$@"';
  // "$0" is a directory and "$@" the command: nothing of them is part of a shell string
  if (tools.uapiDir === undefined || command === 'ip') {
    return stdin ? ['sh', '-c', run, 'sh', command, ...args] : [command, ...args];
  }
  // A directory named wireguard is reached by binding its parent on /run (one mount); any other
  // name by a tmpfs on /run with the directory bound below it.
  const dir = tools.uapiDir;
  const [script, arg0] =
    basename(dir) === 'wireguard'
      ? [`mount --bind "$0" /run && ${run}`, dirname(dir)]
      : [
          `mount -t tmpfs tmpfs /run && mkdir /run/wireguard && mount --bind "$0" /run/wireguard && ${run}`,
          dir,
        ];
  return ['unshare', '-m', '--propagation', 'private', 'sh', '-c', script, arg0, command, ...args];
}

function blank(text: string, secrets: readonly Buffer[]): string {
  let out = text;
  for (const s of secrets) {
    for (const form of [s.toString('base64'), s.toString('hex')]) out = out.split(form).join('[secret]');
  }
  return out;
}

/** The secrets `wg show all dump` printed, kept only when a caller asks (a checkpoint, for its rollback). */
export interface DeviceSecrets {
  privateKey?: Buffer;
  presharedKeys: Map<string, Buffer>;
}

/**
 * Every WireGuard interface with its settings and peers: one `wg show all dump` (beside one
 * `ip -j address`). The private and preshared keys in the dump are dropped, or, with `secrets`,
 * handed to it as Buffers.
 */
export async function readDevices(
  tools: DeviceTools,
  secrets?: Map<string, DeviceSecrets>,
): Promise<Map<string, DeviceInterface>> {
  const [dump, addresses] = await Promise.all([
    runTool(tools, 'wg', ['show', 'all', 'dump']),
    runTool(tools, 'ip', ['-j', 'address', 'show']),
  ]);
  const out = new Map<string, DeviceInterface>();
  for (const line of dump.split('\n')) {
    const f = line.split('\t');
    const name = f[0];
    if (name === undefined || name === '') continue;
    if (f.length === 5) {
      // interface, private key, public key, listen port, fwmark
      out.set(name, {
        ...(f[2] !== '(none)' && f[2] !== undefined ? { public_key: f[2] } : {}),
        listen_port: Number(f[3]),
        address: [],
        peers: [],
      });
      if (secrets !== undefined) {
        secrets.set(name, {
          ...(f[1] !== undefined && f[1] !== '(none)' ? { privateKey: Buffer.from(f[1], 'base64') } : {}),
          presharedKeys: new Map(),
        });
      }
    } else if (f.length === 9) {
      const dev = out.get(name);
      if (dev === undefined) continue;
      const [, key, psk, endpoint, ips, , , , keepalive] = f;
      if (key === undefined) continue;
      const pskBytes = psk !== undefined && psk !== '(none)' ? Buffer.from(psk, 'base64') : undefined;
      dev.peers.push({
        public_key: key,
        ...(endpoint !== undefined && endpoint !== '(none)' ? { endpoint } : {}),
        allowed_ips: ips === undefined || ips === '(none)' ? [] : ips.split(',').sort(),
        ...(keepalive !== undefined && keepalive !== 'off'
          ? { persistent_keepalive: Number(keepalive) }
          : {}),
        ...(pskBytes !== undefined ? { preshared_key: secretDigest(pskBytes) } : {}),
      });
      if (pskBytes !== undefined) secrets?.get(name)?.presharedKeys.set(key, pskBytes);
    }
  }
  // wireguard-go lists peers in Go map order, different on every call: a stable state sorts them
  for (const dev of out.values()) dev.peers.sort((a, b) => (a.public_key < b.public_key ? -1 : 1));
  for (const [name, link] of parseLinks(addresses)) {
    const dev = out.get(name);
    if (dev === undefined) continue;
    if (link.mtu !== undefined) dev.mtu = link.mtu;
    dev.address = link.address;
  }
  return out;
}

/** One interface's addresses, MTU and whether it is up, as `ip` has them (undefined: no such interface). */
export async function readLink(tools: DeviceTools, name: string): Promise<LinkState | undefined> {
  try {
    return parseLinks(await runTool(tools, 'ip', ['-j', 'address', 'show', 'dev', name])).get(name);
  } catch {
    return undefined;
  }
}

export interface LinkState {
  address: string[];
  mtu?: number;
  up: boolean;
}

interface IpLink {
  ifname: string;
  mtu?: number;
  flags?: string[];
  addr_info?: { local: string; prefixlen: number; scope?: string }[];
}

function parseLinks(json: string): Map<string, LinkState> {
  const out = new Map<string, LinkState>();
  for (const link of JSON.parse(json) as IpLink[]) {
    out.set(link.ifname, {
      address: (link.addr_info ?? [])
        .filter((a) => a.scope !== 'link')
        .map((a) => `${a.local}/${a.prefixlen}`)
        .sort(),
      ...(typeof link.mtu === 'number' ? { mtu: link.mtu } : {}),
      up: (link.flags ?? []).includes('UP'),
    });
  }
  return out;
}

/** Creates a missing interface: the kernel module where there is one, else wireguard-go (as configured). */
export async function createInterface(tools: DeviceTools, name: string): Promise<string> {
  if (tools.implementation !== 'wireguard-go') {
    try {
      await runTool(tools, 'ip', ['link', 'add', 'dev', name, 'type', 'wireguard']);
      return 'kernel';
    } catch (e) {
      if (tools.implementation === 'kernel') throw e;
    }
  }
  // wireguard-go daemonises itself; its socket appears once it serves
  await runTool(tools, 'wireguard-go', [name]);
  const socket = join(tools.uapiDir ?? SOCKET_DIR, `${name}.sock`);
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 20));
  if (!existsSync(socket)) throw new DeviceError(`wireguard-go ${name}: no UAPI socket ${socket} after 2 s`);
  return 'wireguard-go';
}

/** Deletes an interface (wireguard-go exits with it). */
export async function deleteInterface(tools: DeviceTools, name: string): Promise<void> {
  await runTool(tools, 'ip', ['link', 'delete', 'dev', name]);
}

/** Makes the device's WireGuard settings exactly config: one `wg syncconf` with the config on stdin. */
export async function syncConfig(tools: DeviceTools, name: string, config: DeviceConfig): Promise<void> {
  const secrets: Buffer[] = [];
  const lines = ['[Interface]'];
  if (config.privateKey !== undefined) {
    secrets.push(config.privateKey);
    lines.push(`PrivateKey = ${config.privateKey.toString('base64')}`);
  }
  if (config.listenPort !== undefined) lines.push(`ListenPort = ${config.listenPort}`);
  for (const p of config.peers) {
    lines.push('[Peer]', `PublicKey = ${p.public_key}`);
    if (p.presharedKey !== 'keep') {
      const psk = p.presharedKey ?? ZERO_KEY; // an all-zero preshared key is WireGuard's "none"
      secrets.push(psk);
      lines.push(`PresharedKey = ${psk.toString('base64')}`);
    }
    if (p.endpoint !== undefined) lines.push(`Endpoint = ${p.endpoint}`);
    if (p.allowed_ips.length > 0) lines.push(`AllowedIPs = ${p.allowed_ips.join(', ')}`);
    lines.push(`PersistentKeepalive = ${p.persistent_keepalive ?? 0}`);
  }
  const text = Buffer.from(lines.join('\n') + '\n');
  try {
    await runTool(tools, 'wg', ['syncconf', name, '/dev/stdin'], text, secrets);
  } finally {
    text.fill(0);
  }
}

/** Makes the interface's addresses and MTU those given (undefined: left as they are) and sets it up. */
export async function syncLink(
  tools: DeviceTools,
  name: string,
  current: { address: string[]; mtu?: number; up?: boolean },
  want: { address?: string[]; mtu?: number },
): Promise<void> {
  if (want.address !== undefined) {
    const have = new Set(current.address.map(normaliseCidr));
    const keep = new Set(want.address.map(normaliseCidr));
    for (const a of current.address) {
      if (!keep.has(normaliseCidr(a))) await runTool(tools, 'ip', ['address', 'delete', a, 'dev', name]);
    }
    for (const a of want.address) {
      if (!have.has(normaliseCidr(a))) await runTool(tools, 'ip', ['address', 'add', a, 'dev', name]);
    }
  }
  if (want.mtu !== undefined && want.mtu !== current.mtu) {
    await runTool(tools, 'ip', ['link', 'set', 'dev', name, 'mtu', String(want.mtu)]);
  }
  if (current.up !== true) await runTool(tools, 'ip', ['link', 'set', 'dev', name, 'up']);
}

/** A CIDR as `ip` prints it (lower-case, no /32 dropped), for comparing a document's with the device's. */
export function normaliseCidr(cidr: string): string {
  return cidr.toLowerCase();
}
