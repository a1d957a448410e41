// The line protocol between the core and an isolated plugin: one JSON message a line. D-Bus values
// that JSON cannot carry (64-bit integers as BigInt, byte arrays as Buffer) travel tagged.

/** At most this many bytes a line: a longer one is a flood, and the child is killed. */
export const MAX_LINE = 8 * 1024 * 1024;

/** JSON text of a message, BigInt and Buffer tagged. */
export function encode(message: unknown): string {
  // most messages hold neither: plain JSON.stringify is several times faster than one with a
  // replacer, and it throws on a BigInt and leaves a Buffer's toJSON mark, so either sends it back
  let plain: string | undefined;
  try {
    plain = JSON.stringify(message);
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
  }
  if (plain !== undefined && !plain.includes('"type":"Buffer"')) return plain;
  return tagged(message);
}

function tagged(message: unknown): string {
  return JSON.stringify(message, (_k, v: unknown) => {
    if (typeof v === 'bigint') return { $bigint: v.toString() };
    if (
      typeof v === 'object' &&
      v !== null &&
      (v as { type?: unknown }).type === 'Buffer' &&
      Array.isArray((v as { data?: unknown }).data)
    )
      return { $bytes: Buffer.from((v as { data: number[] }).data).toString('base64') };
    return v;
  });
}

const PROPERTIES = 'org.freedesktop.DBus.Properties';
const INTROSPECTABLE = 'org.freedesktop.DBus.Introspectable';

/** Whether a bus operation only reads (the facade's own test: no Set, Introspect is a read). */
export function isRead(kind: string, args: unknown[]): boolean {
  if (kind === 'getAll' || kind === 'reachable') return true;
  if (kind !== 'call') return false;
  const c = (args[0] ?? {}) as { interface?: unknown; member?: unknown };
  return (c.interface === PROPERTIES && c.member !== 'Set') || c.interface === INTROSPECTABLE;
}

/** The key a read is matched by on both sides of the pipe: its kind and arguments as the wire encodes them. */
export function readKey(kind: string, args: unknown[]): string {
  return encode([kind, args]);
}

/** A message from its line, tags undone; anything but a JSON object gives undefined. */
export function decode(line: string): Record<string, unknown> | undefined {
  let v: unknown;
  try {
    // the reviver only where a tag can be (a line without one parses the same without it)
    if (!line.includes('"$bigint"') && !line.includes('"$bytes"')) v = JSON.parse(line);
    else
      v = JSON.parse(line, (_k, x: unknown) => {
        if (typeof x === 'object' && x !== null && !Array.isArray(x)) {
          const o = x as Record<string, unknown>;
          const keys = Object.keys(o);
          if (keys.length === 1 && typeof o['$bigint'] === 'string' && /^-?[0-9]{1,40}$/.test(o['$bigint']))
            return BigInt(o['$bigint']);
          if (keys.length === 1 && typeof o['$bytes'] === 'string') return Buffer.from(o['$bytes'], 'base64');
        }
        return x;
      });
  } catch {
    return undefined;
  }
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

/** Splits a byte stream into lines, refusing any line longer than MAX_LINE. */
export class LineReader {
  private buffered = '';
  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onTooLong: () => void,
  ) {}

  push(chunk: string): void {
    this.buffered += chunk;
    let at: number;
    while ((at = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, at);
      this.buffered = this.buffered.slice(at + 1);
      if (line.length > MAX_LINE) {
        this.buffered = '';
        this.onTooLong();
        return;
      }
      this.onLine(line);
    }
    if (this.buffered.length > MAX_LINE) {
      this.buffered = '';
      this.onTooLong();
    }
  }
}

/** The error a message carries, as an Error with the same message (and code, when it had one). */
export function errorOf(e: unknown): { message: string; code?: string; where?: unknown } {
  if (e instanceof Error) {
    const { code, where } = e as { code?: unknown; where?: unknown };
    return {
      message: e.message,
      ...(typeof code === 'string' ? { code } : {}),
      ...(typeof where === 'object' && where !== null ? { where } : {}),
    };
  }
  return { message: String(e) };
}
