import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Socket } from 'node:net';
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { decodeKey, publicKeyOf, secretDigest } from './keys.js';
import { uapiGet, uapiSet, UapiError, type UapiDevice } from './uapi.js';

// The device side, one code path for the kernel module and for userspace implementations: the
// plugin reads and writes WireGuard settings in one shape (DeviceInterface, DeviceConfig) and only
// the last hop differs, as in `wg` itself. An interface with a UAPI socket (<if>.sock in the socket
// directory: wireguard-go, boringtun) is spoken to over that socket (uapi.ts), the protocol `wg`
// speaks there, without a process; any other WireGuard interface (the kernel module, netlink) goes
// through `wg show all dump` and `wg syncconf`. `ip` sets addresses and MTU, and only when they
// change. Argument arrays only; keys go to `wg` on stdin, never as arguments; the private key a
// read returns is dropped where it is parsed unless a checkpoint keeps it in memory.

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
 * Every WireGuard interface with its settings and peers, as one read: one `ip -d -j address` (the
 * links, their addresses and MTU, and which are the kernel module's), one UAPI `get` per socket in
 * the socket directory (userspace implementations), and one `wg show all dump` only when there are
 * kernel interfaces. The private and preshared keys are dropped, or, with `secrets`, handed to it
 * as Buffers.
 */
export async function readDevices(
  tools: DeviceTools,
  secrets?: Map<string, DeviceSecrets>,
): Promise<Map<string, DeviceInterface>> {
  const [links, sockets] = await Promise.all([addressDump(tools).then(parseLinks), socketNames(tools)]);
  const out = new Map<string, DeviceInterface>();
  const read = await Promise.all(
    sockets.map(async (name) => {
      try {
        return { name, dev: await uapiGet(socketPath(tools, name), tools.signal) };
      } catch (e) {
        // a socket nobody serves (an implementation that exited) is no interface, as for wg
        if (e instanceof UapiError && e.unreachable) return undefined;
        throw new DeviceError(`${name}: ${(e as Error).message}`);
      }
    }),
  );
  for (const r of read) {
    if (r === undefined) continue;
    out.set(r.name, fromUapi(r.dev, secrets, r.name));
  }
  const kernel = [...links].filter(([name, l]) => l.kind === 'wireguard' && !out.has(name));
  if (kernel.length > 0) {
    const dump = parseDump(await runTool(tools, 'wg', ['show', 'all', 'dump']), secrets);
    for (const [name] of kernel) {
      const dev = dump.get(name);
      if (dev !== undefined) out.set(name, dev);
    }
  }
  for (const [name, link] of links) {
    const dev = out.get(name);
    if (dev === undefined) continue;
    if (link.mtu !== undefined) dev.mtu = link.mtu;
    dev.address = link.address;
  }
  return out;
}

/**
 * `ip -d -j address show` of the namespace: asked of one long-lived `ip -batch` reader (a line in, a
 * JSON line out, well under a millisecond) rather than a new process per read, which costs the core
 * a fork of itself each time (10-20 ms on a loaded machine); a fresh `ip` when the reader fails.
 */
async function addressDump(tools: DeviceTools): Promise<string> {
  try {
    reader ??= new IpReader();
    return await reader.addresses();
  } catch {
    return runTool(tools, 'ip', ['-d', '-j', 'address', 'show']);
  }
}

let reader: IpReader | undefined;

/** Stops the `ip -batch` reader (it also ends by itself when this process exits: its stdin closes). */
export function closeIpReader(): void {
  reader?.close();
  reader = undefined;
}

/** One `ip -d -j -batch -` child: each `address show` line written gets one JSON line back, in order. */
class IpReader {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  private pending: Buffer[] = [];
  private dead = false;

  constructor() {
    // no -force: a command that fails ends the child (its waiters fail, the next read starts another)
    this.child = spawn('ip', ['-d', '-j', '-batch', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    // it must not keep the process alive: it ends when its stdin closes
    this.child.unref();
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr])
      (s as unknown as Socket).unref();
    this.child.stdout.on('data', (b: Buffer) => this.data(b));
    this.child.stderr.on('data', () => undefined);
    this.child.stdin.on('error', () => this.fail(new DeviceError('ip -batch: its stdin closed')));
    this.child.on('error', (e) => this.fail(new DeviceError(`ip -batch: ${e.message}`)));
    this.child.on('exit', (code) => this.fail(new DeviceError(`ip -batch exited (${code ?? 'signal'})`)));
  }

  addresses(): Promise<string> {
    if (this.dead) return Promise.reject(new DeviceError('ip -batch has ended'));
    return new Promise((resolveRead, rejectRead) => {
      const timer = setTimeout(() => {
        this.fail(new DeviceError('ip -batch: no answer in 5 s'));
      }, 5_000);
      this.waiting.push({
        resolve: (line) => {
          clearTimeout(timer);
          resolveRead(line);
        },
        reject: (e) => {
          clearTimeout(timer);
          rejectRead(e);
        },
      });
      this.child.stdin.write('address show\n');
    });
  }

  close(): void {
    this.fail(new DeviceError('ip -batch closed'));
  }

  private data(b: Buffer): void {
    this.pending.push(b);
    if (!b.includes(0x0a)) return;
    let all = Buffer.concat(this.pending);
    for (let nl = all.indexOf(0x0a); nl >= 0; nl = all.indexOf(0x0a)) {
      const line = all.toString('utf8', 0, nl);
      all = all.subarray(nl + 1);
      this.waiting.shift()?.resolve(line);
    }
    this.pending = all.length > 0 ? [all] : [];
  }

  private fail(e: Error): void {
    if (!this.dead) {
      this.dead = true;
      if (reader === this) reader = undefined;
      this.child.stdin.destroy();
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill();
    }
    for (const w of this.waiting.splice(0)) w.reject(e);
  }
}

/** The UAPI socket directory: the configured one, else the one `wg` and wireguard-go use. */
export function socketPath(tools: DeviceTools, name: string): string {
  return join(tools.uapiDir ?? SOCKET_DIR, `${name}.sock`);
}

/** The interfaces that have a socket in the socket directory (as `wg show interfaces` finds them). */
async function socketNames(tools: DeviceTools): Promise<string[]> {
  try {
    const entries = await readdir(tools.uapiDir ?? SOCKET_DIR, { withFileTypes: true });
    return entries
      .filter((e) => e.isSocket() && e.name.endsWith('.sock'))
      .map((e) => e.name.slice(0, -'.sock'.length))
      .filter((n) => /^[A-Za-z0-9_=+.-]{1,15}$/.test(n))
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** Whether an interface is served through a UAPI socket (else it is the kernel module's, through `wg`). */
function hasSocket(tools: DeviceTools, name: string): boolean {
  try {
    return lstatSync(socketPath(tools, name)).isSocket();
  } catch {
    return false;
  }
}

/** A UAPI device as the plugin's state: keys base64, its own public key derived from its private key. */
function fromUapi(
  dev: UapiDevice,
  secrets: Map<string, DeviceSecrets> | undefined,
  name: string,
): DeviceInterface {
  const kept: DeviceSecrets = { presharedKeys: new Map() };
  const out: DeviceInterface = {
    ...(dev.privateKey !== undefined ? { public_key: publicKeyOf(dev.privateKey) } : {}),
    listen_port: dev.listenPort,
    address: [],
    peers: dev.peers
      .map((p): DevicePeer => {
        const key = p.publicKey.toString('base64');
        const peer: DevicePeer = {
          public_key: key,
          ...(p.endpoint !== undefined ? { endpoint: p.endpoint } : {}),
          allowed_ips: [...p.allowedIps].sort(),
          ...(p.persistentKeepalive > 0 ? { persistent_keepalive: p.persistentKeepalive } : {}),
          ...(p.presharedKey !== undefined ? { preshared_key: secretDigest(p.presharedKey) } : {}),
        };
        if (p.presharedKey !== undefined) {
          if (secrets !== undefined) kept.presharedKeys.set(key, p.presharedKey);
          else p.presharedKey.fill(0);
        }
        return peer;
      })
      .sort((a, b) => (a.public_key < b.public_key ? -1 : 1)),
  };
  if (dev.privateKey !== undefined) {
    if (secrets !== undefined) kept.privateKey = dev.privateKey;
    else dev.privateKey.fill(0);
  }
  secrets?.set(name, kept);
  return out;
}

/** `wg show all dump` (the kernel module's interfaces), private keys dropped or handed to `secrets`. */
function parseDump(dump: string, secrets?: Map<string, DeviceSecrets>): Map<string, DeviceInterface> {
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
  for (const dev of out.values()) dev.peers.sort((a, b) => (a.public_key < b.public_key ? -1 : 1));
  return out;
}

/**
 * Whether an interface is up, from sysfs (the flags of the network namespace the process runs in),
 * without a process; undefined when sysfs does not say (then the caller sets it up regardless).
 */
export function isUp(name: string): boolean | undefined {
  try {
    const flags = Number.parseInt(readFileSync(`/sys/class/net/${name}/flags`, 'utf8').trim(), 16);
    return Number.isNaN(flags) ? undefined : (flags & 1) === 1;
  } catch {
    return undefined;
  }
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
  /** The link's kind with `ip -d` ("wireguard" for the kernel module's, "tun" for wireguard-go's). */
  kind?: string;
}

interface IpLink {
  ifname: string;
  mtu?: number;
  flags?: string[];
  addr_info?: { local: string; prefixlen: number; scope?: string }[];
  linkinfo?: { info_kind?: string };
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
      ...(typeof link.linkinfo?.info_kind === 'string' ? { kind: link.linkinfo.info_kind } : {}),
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

/**
 * Makes the device's WireGuard settings exactly config, as `wg syncconf` does (peers not in config
 * removed, every peer in it set with its allowed IPs replaced, sessions of kept peers untouched).
 * Through the interface's UAPI socket when it has one: a `get` for the peers to remove and one
 * `set`, the same lines `wg` would write there. Else (the kernel module) one `wg syncconf` with the
 * config on stdin.
 */
export async function syncConfig(
  tools: DeviceTools,
  name: string,
  config: DeviceConfig,
  via: Transport = hasSocket(tools, name) ? 'uapi' : 'wg',
): Promise<void> {
  return via === 'uapi' ? syncUapi(tools, name, config) : syncWg(tools, name, config);
}

/** The last hop to a device: its UAPI socket, or `wg` (netlink for the kernel module; wg also speaks UAPI). */
export type Transport = 'uapi' | 'wg';

/**
 * One interface's WireGuard settings (no addresses) through the given transport: what readDevices
 * uses for it, or the other one, so that tests can hold the two side by side on one device.
 */
export async function readWireguard(
  tools: DeviceTools,
  name: string,
  via: Transport,
): Promise<DeviceInterface | undefined> {
  if (via === 'wg') return parseDump(await runTool(tools, 'wg', ['show', 'all', 'dump'])).get(name);
  if (!hasSocket(tools, name)) return undefined;
  return fromUapi(await uapiGet(socketPath(tools, name), tools.signal), undefined, name);
}

/** A public key as WireGuard has it: 32 bytes in canonical base64 (what `wg` accepts), else an error naming it. */
function publicKeyBytes(name: string, key: string): Buffer {
  const raw = decodeKey(key);
  if (raw === undefined || raw.length !== 32) {
    throw new DeviceError(`${name}: ${key} is not a valid WireGuard public key (32 bytes, canonical base64)`);
  }
  return raw;
}

async function syncUapi(tools: DeviceTools, name: string, config: DeviceConfig): Promise<void> {
  const socket = socketPath(tools, name);
  // every key is checked before anything is sent: a bad one changes nothing
  const peers = config.peers.map((p) => ({
    publicKey: publicKeyBytes(name, p.public_key),
    ...(p.presharedKey !== 'keep' ? { presharedKey: p.presharedKey ?? ZERO_KEY } : {}),
    ...(p.endpoint !== undefined ? { endpoint: p.endpoint } : {}),
    allowedIps: p.allowed_ips,
    persistentKeepalive: p.persistent_keepalive ?? 0,
  }));
  try {
    const now = await uapiGet(socket, tools.signal);
    now.privateKey?.fill(0);
    const wanted = new Set(config.peers.map((p) => p.public_key));
    const remove: Buffer[] = [];
    for (const p of now.peers) {
      p.presharedKey?.fill(0);
      if (!wanted.has(p.publicKey.toString('base64'))) remove.push(p.publicKey);
    }
    await uapiSet(
      socket,
      {
        ...(config.privateKey !== undefined ? { privateKey: config.privateKey } : {}),
        ...(config.listenPort !== undefined ? { listenPort: config.listenPort } : {}),
        remove,
        peers,
      },
      tools.signal,
    );
  } catch (e) {
    throw e instanceof DeviceError ? e : new DeviceError(`${name}: ${(e as Error).message}`);
  }
}

async function syncWg(tools: DeviceTools, name: string, config: DeviceConfig): Promise<void> {
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
