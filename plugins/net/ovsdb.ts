import { connect, type Socket } from 'node:net';

// A small OVSDB client (RFC 7047, JSON-RPC 1.0 over a Unix socket): transact (with `wait`
// conditions), monitor, echo, and ovs-vswitchd's cur_cfg handshake. No maintained npm client
// exists. The server sends concatenated JSON values with no delimiter, so the stream is split by
// brace balance, minding strings and their escapes.

/** An OVSDB atom or datum as it travels on the wire: ["uuid", u], ["set", [...]], ["map", [[k, v]...]], or a scalar. */
export type Datum = string | number | boolean | [string, unknown];
export type Row = Record<string, Datum>;
export type Operation = Record<string, unknown> & { op: string };

/** Splits a byte stream of concatenated JSON objects/arrays into their texts. */
export class JsonStreamSplitter {
  private buffer = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private scanned = 0;
  private start = -1;

  /** Feeds text; returns every complete top-level value it finishes. */
  push(chunk: string): string[] {
    this.buffer += chunk;
    const out: string[] = [];
    let i = this.scanned;
    for (; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) {
        if (this.depth === 0) this.start = i;
        this.depth++;
      } else if (c === 0x7d || c === 0x5d) {
        this.depth--;
        if (this.depth < 0)
          throw new OvsdbError('protocol', `unbalanced "${String.fromCharCode(c)}" in the stream`);
        if (this.depth === 0) out.push(this.buffer.slice(this.start, i + 1));
      } else if (this.depth === 0 && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
        throw new OvsdbError('protocol', `unexpected "${String.fromCharCode(c)}" between messages`);
      }
    }
    if (this.depth === 0) {
      this.buffer = '';
      this.scanned = 0;
    } else {
      // keep only the unfinished value
      this.buffer = this.buffer.slice(this.start);
      this.scanned = this.buffer.length;
      this.start = 0;
    }
    return out;
  }
}

/** An error from the server or the stream: `kind` is the RFC 7047 error string ("constraint violation", ...) or "protocol"/"closed". */
export class OvsdbError extends Error {
  constructor(
    readonly kind: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'OvsdbError';
  }
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  method: string;
}

interface Message {
  id?: unknown;
  method?: unknown;
  params?: unknown;
  result?: unknown;
  error?: unknown;
}

/** One connection to an OVSDB server. */
export class OvsdbClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly monitors = new Map<string, (update: Record<string, Record<string, unknown>>) => void>();
  private closed: Error | undefined;

  private constructor(private readonly socket: Socket) {
    const splitter = new JsonStreamSplitter();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      try {
        for (const text of splitter.push(chunk)) this.dispatch(JSON.parse(text) as Message);
      } catch (e) {
        this.fail(e instanceof Error ? e : new Error(String(e)));
        socket.destroy();
      }
    });
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new OvsdbError('closed', 'the OVSDB connection closed')));
  }

  /** Connects to a Unix socket (e.g. OVS_RUNDIR/db.sock). */
  static connect(path: string, timeoutMs = 5_000): Promise<OvsdbClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new OvsdbError('closed', `no OVSDB server answered on ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new OvsdbClient(socket));
      });
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(new OvsdbError('closed', `cannot connect to OVSDB at ${path}: ${e.message}`));
      });
    });
  }

  /** A JSON-RPC request; rejects with the server's error when the reply has one. */
  request(method: string, params: unknown[]): Promise<unknown> {
    if (this.closed !== undefined) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.socket.write(JSON.stringify({ id, method, params }));
    });
  }

  listDbs(): Promise<string[]> {
    return this.request('list_dbs', []) as Promise<string[]>;
  }

  /** The client's own echo (the server answers with the same params). */
  echo(payload: unknown[] = []): Promise<unknown> {
    return this.request('echo', payload);
  }

  /**
   * Runs operations as one transaction. A failed transaction is a result array with an
   * `{error, details}` element (the whole transaction rolled back), not a JSON-RPC error: thrown here
   * as an OvsdbError naming the operation that failed.
   */
  async transact(db: string, ops: readonly Operation[]): Promise<Record<string, unknown>[]> {
    const result = (await this.request('transact', [db, ...ops])) as (Record<string, unknown> | null)[];
    if (!Array.isArray(result)) throw new OvsdbError('protocol', 'transact returned no result array');
    const failed = result.findIndex((r) => r !== null && typeof r === 'object' && 'error' in r);
    if (failed >= 0) {
      const r = result[failed] as { error: string; details?: string };
      const op = ops[failed];
      const where =
        op === undefined ? 'the transaction' : `operation ${failed} (${op.op} ${String(op['table'] ?? '')})`;
      throw new OvsdbError(
        r.error,
        `OVSDB: ${r.error} in ${where}${r.details ? `: ${r.details}` : ''}`,
        r.details,
      );
    }
    if (result.length > ops.length) {
      const extra = result[ops.length] as { error?: string; details?: string } | null;
      throw new OvsdbError(
        extra?.error ?? 'error',
        `OVSDB: ${extra?.error ?? 'error'}: ${extra?.details ?? ''}`,
      );
    }
    return result.map((r) => r ?? {});
  }

  /** Starts a monitor; returns the initial rows and calls onUpdate with each later `update`. */
  async monitor(
    db: string,
    id: string,
    requests: Record<string, { columns?: string[] }>,
    onUpdate: (update: Record<string, Record<string, unknown>>) => void,
  ): Promise<Record<string, Record<string, unknown>>> {
    this.monitors.set(id, onUpdate);
    try {
      return (await this.request('monitor', [db, id, requests])) as Record<string, Record<string, unknown>>;
    } catch (e) {
      this.monitors.delete(id);
      throw e;
    }
  }

  async cancelMonitor(id: string): Promise<void> {
    await this.request('monitor_cancel', [id]);
    this.monitors.delete(id);
  }

  close(): void {
    this.closed ??= new OvsdbError('closed', 'the OVSDB connection was closed by us');
    this.socket.destroy();
  }

  private dispatch(m: Message): void {
    if (typeof m.method === 'string') {
      if (m.method === 'echo') {
        this.socket.write(JSON.stringify({ id: m.id, result: m.params ?? [], error: null }));
      } else if (m.method === 'update' && Array.isArray(m.params)) {
        const [id, update] = m.params as [string, Record<string, Record<string, unknown>>];
        this.monitors.get(id)?.(update);
      }
      return;
    }
    if (typeof m.id !== 'number') return;
    const p = this.pending.get(m.id);
    if (p === undefined) return;
    this.pending.delete(m.id);
    if (m.error !== null && m.error !== undefined) {
      const e = m.error as { error?: string; details?: string } | string;
      const kind = typeof e === 'string' ? e : (e.error ?? 'error');
      const details = typeof e === 'string' ? undefined : e.details;
      p.reject(new OvsdbError(kind, `OVSDB ${p.method}: ${kind}${details ? `: ${details}` : ''}`, details));
    } else p.resolve(m.result);
  }

  private fail(e: Error): void {
    this.closed ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}

// ----- datum helpers -------------------------------------------------------------------------

/** The members of a set datum (a single atom is a set of one). */
export function setOf(d: unknown): unknown[] {
  if (Array.isArray(d) && d[0] === 'set' && Array.isArray(d[1])) return d[1] as unknown[];
  return [d];
}

/** A uuid atom's value. */
export function uuidOf(d: unknown): string {
  if (Array.isArray(d) && (d[0] === 'uuid' || d[0] === 'named-uuid') && typeof d[1] === 'string') return d[1];
  throw new OvsdbError('protocol', `not a uuid: ${JSON.stringify(d)}`);
}

/** An optional scalar column (a set of zero or one). */
export function optionalOf(d: unknown): unknown {
  const s = setOf(d);
  return s.length === 0 ? undefined : s[0];
}

export function mapOf(d: unknown): Record<string, unknown> {
  if (Array.isArray(d) && d[0] === 'map' && Array.isArray(d[1])) {
    return Object.fromEntries(d[1] as [string, unknown][]);
  }
  return {};
}

/** A set datum of atoms. */
export const set = (items: readonly unknown[]): ['set', unknown[]] => ['set', [...items]];
export const uuid = (u: string): ['uuid', string] => ['uuid', u];
export const namedUuid = (n: string): ['named-uuid', string] => ['named-uuid', n];

/**
 * Bumps Open_vSwitch.next_cfg in the same transaction as ops and waits until ovs-vswitchd reports
 * that configuration in cur_cfg (what ovs-vsctl does without --no-wait): after it, the bridges and
 * ports the transaction made exist in the switch. Returns the results of ops.
 */
export async function transactAndWait(
  client: OvsdbClient,
  ops: readonly Operation[],
  timeoutMs = 10_000,
): Promise<Record<string, unknown>[]> {
  const all = await client.transact('Open_vSwitch', [
    ...ops,
    { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['next_cfg', '+=', 1]] },
    { op: 'select', table: 'Open_vSwitch', where: [], columns: ['next_cfg'] },
  ]);
  const selected = all[all.length - 1] as { rows?: { next_cfg: number }[] };
  const next = selected.rows?.[0]?.next_cfg;
  if (typeof next !== 'number')
    throw new OvsdbError('protocol', 'no Open_vSwitch row (is the database initialised?)');
  await waitCurCfg(client, next, timeoutMs);
  return all.slice(0, ops.length);
}

/** Waits (an RFC 7047 `wait` operation, so the server does the waiting) until cur_cfg reaches next. */
export async function waitCurCfg(client: OvsdbClient, next: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      await client.transact('Open_vSwitch', [
        {
          op: 'wait',
          table: 'Open_vSwitch',
          where: [],
          columns: ['cur_cfg'],
          until: '==',
          rows: [{ cur_cfg: next }],
          timeout: Math.max(0, Math.min(1_000, until - Date.now())),
        },
      ]);
      return;
    } catch (e) {
      if (!(e instanceof OvsdbError) || e.kind !== 'timed out') throw e;
    }
    // a later change may have moved cur_cfg past ours (then `==` never holds): that also means ours is in
    const [r] = await client.transact('Open_vSwitch', [
      { op: 'select', table: 'Open_vSwitch', where: [], columns: ['cur_cfg'] },
    ]);
    const cur = (r as { rows?: { cur_cfg: number }[] } | undefined)?.rows?.[0]?.cur_cfg;
    if (typeof cur === 'number' && cur >= next) return;
    if (Date.now() >= until) {
      throw new OvsdbError(
        'timed out',
        `ovs-vswitchd did not take up configuration ${next} within ${timeoutMs} ms (is it running?)`,
      );
    }
  }
}
