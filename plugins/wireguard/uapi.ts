import { createConnection } from 'node:net';

// WireGuard's cross-platform userspace API (https://www.wireguard.com/xplatform/), spoken over a
// userspace implementation's socket (<dir>/<interface>.sock: wireguard-go, boringtun): `get=1`
// reads the device, `set=1` changes it; every reply ends with `errno=N` and a blank line. This is
// the protocol `wg` itself speaks to those sockets (and translates to netlink for the kernel
// module): the plugin speaks it directly, saving a `wg` process (and, on the development host, the
// mount namespace `wg` needs to find the socket) per read and per write.
//
// Keys are hex in UAPI. Secrets stay in Buffers: a reply is parsed byte by byte, the private and
// preshared keys decoded from it straight into Buffers, and the reply wiped; a request is written
// from a Buffer that is wiped once sent. No secret becomes a JavaScript string.

/** A UAPI exchange that failed: the socket's error or the device's errno; never a key. */
export class UapiError extends Error {
  constructor(
    message: string,
    /** The socket refused or vanished (a stale socket of an implementation that exited). */
    readonly unreachable = false,
  ) {
    super(message);
  }
}

/** One request on a fresh connection; resolves with the whole reply (the caller wipes it). */
export function uapiExchange(
  socket: string,
  request: Buffer,
  signal?: AbortSignal,
  timeoutMs = 10_000,
): Promise<Buffer> {
  return new Promise((resolveRun, rejectRun) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const conn = createConnection(socket);
    const finish = (e?: UapiError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      conn.destroy();
      const reply = Buffer.concat(chunks);
      for (const c of chunks) c.fill(0);
      if (e !== undefined) {
        reply.fill(0);
        rejectRun(e);
      } else resolveRun(reply);
    };
    const onAbort = (): void => finish(new UapiError(`${socket}: aborted`));
    const timer = setTimeout(
      () => finish(new UapiError(`${socket}: no reply in ${timeoutMs} ms`)),
      timeoutMs,
    );
    if (signal?.aborted === true) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    conn.on('connect', () => {
      conn.write(request, () => request.fill(0));
    });
    conn.on('data', (b: Buffer) => {
      chunks.push(b);
      if (ended(chunks)) finish();
    });
    conn.on('error', (e: NodeJS.ErrnoException) => {
      request.fill(0);
      const gone = e.code === 'ECONNREFUSED' || e.code === 'ENOENT';
      finish(new UapiError(`${socket}: ${e.code ?? e.message}`, gone));
    });
    conn.on('close', () => finish(new UapiError(`${socket}: closed before its reply ended`)));
  });
}

/** A reply ends with "errno=N\n\n": the last chunk ends with a blank line after an errno line. */
function ended(chunks: readonly Buffer[]): boolean {
  const last = chunks.at(-1);
  if (last === undefined) return false;
  const tail = last.length >= 2 ? last.subarray(-2) : Buffer.concat(chunks.slice(-2)).subarray(-2);
  if (tail[0] !== 0x0a || tail[1] !== 0x0a) return false;
  return Buffer.concat(chunks).includes('errno=');
}

/** One key=value line of a reply, the value as bytes (so a key never becomes a string). */
interface Line {
  key: string;
  value: Buffer;
}

function lines(reply: Buffer): Line[] {
  const out: Line[] = [];
  let start = 0;
  while (start < reply.length) {
    let end = reply.indexOf(0x0a, start);
    if (end < 0) end = reply.length;
    const eq = reply.indexOf(0x3d, start);
    if (eq > start && eq < end) {
      out.push({ key: reply.toString('latin1', start, eq), value: reply.subarray(eq + 1, end) });
    }
    start = end + 1;
  }
  return out;
}

/** The reply's errno (0: done); anything else is an error naming the operation. */
function checkErrno(all: readonly Line[], what: string): void {
  const errno = all.find((l) => l.key === 'errno');
  if (errno === undefined) throw new UapiError(`${what}: the reply has no errno line`);
  const n = errno.value.toString('latin1');
  if (n !== '0') throw new UapiError(`${what}: the device answered errno=${n}${errnoName(n)}`);
}

function errnoName(n: string): string {
  const names: Record<string, string> = {
    '1': 'EPERM',
    '2': 'ENOENT',
    '5': 'EIO',
    '22': 'EINVAL',
    '98': 'EADDRINUSE',
  };
  const name = names[n.replace(/^-/, '')];
  return name === undefined ? '' : ` (${name})`;
}

const HEX = '0123456789abcdef';

/** 64 hex digits decoded into a fresh 32-byte Buffer, or undefined. */
function hexKey(value: Buffer): Buffer | undefined {
  if (value.length !== 64) return undefined;
  const out = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) {
    const hi = nibble(value[2 * i] ?? 0);
    const lo = nibble(value[2 * i + 1] ?? 0);
    if (hi < 0 || lo < 0) {
      out.fill(0);
      return undefined;
    }
    out[i] = hi * 16 + lo;
  }
  return out;
}

function nibble(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** A key as 64 hex digits in a Buffer (the caller wipes it). */
function toHex(key: Buffer): Buffer {
  const out = Buffer.alloc(key.length * 2);
  for (let i = 0; i < key.length; i++) {
    const b = key[i] ?? 0;
    out[2 * i] = HEX.charCodeAt(b >> 4);
    out[2 * i + 1] = HEX.charCodeAt(b & 15);
  }
  return out;
}

const isZero = (b: Buffer): boolean => b.every((x) => x === 0);

/** A device as `get=1` describes it; keys raw (the private and preshared ones are the caller's to wipe). */
export interface UapiDevice {
  privateKey?: Buffer;
  listenPort: number;
  peers: {
    publicKey: Buffer;
    presharedKey?: Buffer;
    endpoint?: string;
    allowedIps: string[];
    persistentKeepalive: number;
    lastHandshakeSec: number;
  }[];
}

/** `get=1` on a socket, parsed; the reply is wiped before this returns. */
export async function uapiGet(socket: string, signal?: AbortSignal): Promise<UapiDevice> {
  const reply = await uapiExchange(socket, Buffer.from('get=1\n\n'), signal);
  try {
    const all = lines(reply);
    checkErrno(all, `UAPI get on ${socket}`);
    const dev: UapiDevice = { listenPort: 0, peers: [] };
    let peer: UapiDevice['peers'][number] | undefined;
    for (const { key, value } of all) {
      if (key === 'public_key') {
        const k = hexKey(value);
        if (k === undefined)
          throw new UapiError(`UAPI get on ${socket}: a peer's public_key is not 64 hex digits`);
        peer = { publicKey: k, allowedIps: [], persistentKeepalive: 0, lastHandshakeSec: 0 };
        dev.peers.push(peer);
        continue;
      }
      if (peer === undefined) {
        if (key === 'private_key') {
          const k = hexKey(value);
          if (k !== undefined && !isZero(k)) dev.privateKey = k;
        } else if (key === 'listen_port') dev.listenPort = Number(value.toString('latin1'));
        continue;
      }
      switch (key) {
        case 'preshared_key': {
          const k = hexKey(value);
          if (k !== undefined && !isZero(k)) peer.presharedKey = k;
          else k?.fill(0);
          break;
        }
        case 'endpoint':
          peer.endpoint = value.toString('latin1');
          break;
        case 'allowed_ip':
          peer.allowedIps.push(value.toString('latin1'));
          break;
        case 'persistent_keepalive_interval':
          peer.persistentKeepalive = Number(value.toString('latin1'));
          break;
        case 'last_handshake_time_sec':
          peer.lastHandshakeSec = Number(value.toString('latin1'));
          break;
        default:
          break;
      }
    }
    return dev;
  } finally {
    reply.fill(0);
  }
}

/** What one `set=1` changes: as `wg syncconf` would send it (the same lines `wg` writes to a socket). */
export interface UapiSet {
  privateKey?: Buffer;
  listenPort?: number;
  /** Raw public keys of peers to remove. */
  remove: Buffer[];
  peers: {
    publicKey: Buffer;
    /** undefined: left as the device has it. */
    presharedKey?: Buffer;
    endpoint?: string;
    allowedIps: string[];
    persistentKeepalive: number;
  }[];
}

/** `set=1` on a socket; the request (with its keys) is wiped once written. */
export async function uapiSet(socket: string, set: UapiSet, signal?: AbortSignal): Promise<void> {
  const parts: Buffer[] = [Buffer.from('set=1\n')];
  const text = (s: string): void => void parts.push(Buffer.from(s, 'latin1'));
  const key = (name: string, k: Buffer): void => {
    text(`${name}=`);
    parts.push(toHex(k));
    text('\n');
  };
  if (set.privateKey !== undefined) key('private_key', set.privateKey);
  if (set.listenPort !== undefined) text(`listen_port=${set.listenPort}\n`);
  for (const k of set.remove) {
    key('public_key', k);
    text('remove=true\n');
  }
  for (const p of set.peers) {
    key('public_key', p.publicKey);
    if (p.presharedKey !== undefined) key('preshared_key', p.presharedKey);
    if (p.endpoint !== undefined) text(`endpoint=${p.endpoint}\n`);
    text(`persistent_keepalive_interval=${p.persistentKeepalive}\n`);
    text('replace_allowed_ips=true\n');
    for (const ip of p.allowedIps) text(`allowed_ip=${ip}\n`);
  }
  text('\n');
  const request = Buffer.concat(parts);
  for (const p of parts) p.fill(0);
  const reply = await uapiExchange(socket, request, signal);
  try {
    checkErrno(lines(reply), `UAPI set on ${socket}`);
  } finally {
    reply.fill(0);
  }
}
