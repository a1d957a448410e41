import type Database from 'better-sqlite3';
import { OpError } from '../../common/contract/errors.js';
import { HASH_SIZE } from '../../common/transparency/merkle.js';

/**
 * The rows of one append transaction, built on the log's thread (bodies, leaves, Merkle nodes, index
 * columns) and inserted by insertRows, on that thread or on the writer thread. Laid out to be cheap to
 * post: strings joined into one, hashes in one transferable buffer, a few small arrays.
 */
export interface RowBatch {
  /** Seq of the first row; the rows are consecutive. */
  firstSeq: number;
  /** Leaf (hex) of entry firstSeq - 1, which the first row's prev names; ZERO_HASH when firstSeq is 0. */
  prev: string;
  count: number;
  /** The time column of every row (one clock reading per batch). */
  time: string;
  /**
   * Row i's body, then its summary, as UTF-8 ending at byte ends[2i] and ends[2i + 1]: off the JS heap and
   * transferred, where one joined string would be flattened and copied on both threads.
   */
  texts: Uint8Array;
  ends: Uint32Array;
  /** The distinct kinds and plugins of the batch (few); row i's are labels[kindOf[i]] and labels[pluginOf[i]]. */
  labels: (string | null)[];
  kindOf: Uint32Array;
  pluginOf: Uint32Array;
  /** Row i's actor uid; NaN for null. */
  uids: Float64Array;
  /** Row i's leaf at HASH_SIZE * i; its interior nodes from HASH_SIZE * capacity + nodeEnds[i - 1] to + nodeEnds[i]. */
  hashes: Uint8Array;
  capacity: number;
  nodeEnds: Uint32Array;
  /** Payload files the rows name (already written and fsynced): hash, canonical bytes, stored bytes. */
  payloads: [string, number, number][];
}

/** Room for a row's body and summary to start with (UTF-8 bytes); the buffer grows when rows are longer. */
const TEXT_BYTES_PER_ROW = 512;

/** Accumulates the rows of one batch; at most `capacity` of them. */
export class RowBatchBuilder {
  private texts: Buffer;
  private textEnd = 0;
  private nodesEnd = 0;
  private readonly ends: Uint32Array;
  private readonly labels: (string | null)[] = [];
  private readonly labelIds = new Map<string | null, number>();
  private readonly kindOf: Uint32Array;
  private readonly pluginOf: Uint32Array;
  private readonly uids: Float64Array;
  /** Not from the Buffer pool: its whole ArrayBuffer is the batch's, so it can be transferred. */
  private readonly hashes: Buffer;
  private readonly nodeEnds: Uint32Array;
  private readonly payloads: [string, number, number][] = [];
  private count = 0;

  constructor(
    private readonly firstSeq: number,
    private readonly prev: string,
    private readonly time: string,
    private readonly capacity: number,
  ) {
    this.ends = new Uint32Array(capacity * 2);
    this.texts = Buffer.allocUnsafeSlow(capacity * TEXT_BYTES_PER_ROW);
    this.nodeEnds = new Uint32Array(capacity);
    this.kindOf = new Uint32Array(capacity);
    this.pluginOf = new Uint32Array(capacity);
    this.uids = new Float64Array(capacity);
    // n consecutive leaves complete fewer than n + 64 interior nodes (trailing one-bits of their seqs).
    this.hashes = Buffer.allocUnsafeSlow(HASH_SIZE * (2 * capacity + 64));
  }

  get size(): number {
    return this.count;
  }

  /** Adds the next row; `nodesHex` as extendHex returns it. */
  add(
    body: string,
    leafHex: string,
    nodesHex: string | null,
    kind: string,
    plugin: string | null,
    uid: number | null,
    summary: string,
  ): void {
    const i = this.count;
    if (i >= this.capacity) throw new OpError('Internal', `audit batch holds at most ${this.capacity} rows`);
    // At most 3 UTF-8 bytes per UTF-16 code unit.
    const need = this.textEnd + 3 * (body.length + summary.length);
    if (need > this.texts.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(need, 2 * this.texts.length));
      this.texts.copy(grown, 0, 0, this.textEnd);
      this.texts = grown;
    }
    this.textEnd += this.texts.write(body, this.textEnd, 'utf8');
    this.ends[2 * i] = this.textEnd;
    this.textEnd += this.texts.write(summary, this.textEnd, 'utf8');
    this.ends[2 * i + 1] = this.textEnd;
    this.kindOf[i] = this.labelId(kind);
    this.pluginOf[i] = this.labelId(plugin);
    this.uids[i] = uid ?? Number.NaN;
    this.hashes.write(leafHex, HASH_SIZE * i, 'hex');
    if (nodesHex !== null) {
      this.hashes.write(nodesHex, HASH_SIZE * this.capacity + this.nodesEnd, 'hex');
      this.nodesEnd += nodesHex.length / 2;
    }
    this.nodeEnds[i] = this.nodesEnd;
    this.count = i + 1;
  }

  private labelId(label: string | null): number {
    let id = this.labelIds.get(label);
    if (id === undefined) {
      id = this.labels.length;
      this.labels.push(label);
      this.labelIds.set(label, id);
    }
    return id;
  }

  /** Records a payload file that a row of this batch names. */
  notePayload(hash: string, bytes: number, stored: number): void {
    this.payloads.push([hash, bytes, stored]);
  }

  /** The batch; the builder is not used afterwards. */
  finish(): RowBatch {
    return {
      firstSeq: this.firstSeq,
      prev: this.prev,
      count: this.count,
      time: this.time,
      texts: this.texts,
      ends: this.ends,
      labels: this.labels,
      kindOf: this.kindOf,
      pluginOf: this.pluginOf,
      uids: this.uids,
      hashes: this.hashes,
      capacity: this.capacity,
      nodeEnds: this.nodeEnds,
      payloads: this.payloads,
    };
  }
}

/** The buffers a posted batch hands over rather than copies. */
export function transferables(batch: RowBatch): ArrayBuffer[] {
  return [
    batch.texts,
    batch.hashes,
    batch.ends,
    batch.nodeEnds,
    batch.kindOf,
    batch.pluginOf,
    batch.uids,
  ].map((a) => a.buffer as ArrayBuffer);
}

/** The statements insertRows runs (`last` also serves the log's own reads of where the table ends). */
export function prepareInsert(db: Database.Database) {
  return {
    last: db.prepare<[], { seq: number; leaf: unknown }>(
      'SELECT seq, leaf FROM entries ORDER BY seq DESC LIMIT 1',
    ),
    insertEntry: db.prepare<
      [number, string, Uint8Array, string, string, string | null, number | null, string, Uint8Array | null]
    >(
      'INSERT INTO entries(seq, body, leaf, time, kind, plugin, actor_uid, summary, nodes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    notePayload: db.prepare<[string, number, number, string, string]>(
      `INSERT INTO payloads(hash, bytes, stored_bytes, first_time, last_time) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(hash) DO UPDATE SET last_time = excluded.last_time, stored_bytes = excluded.stored_bytes,
         pruned_at = NULL, pruned_reason = NULL`,
    ),
  };
}
export type InsertStatements = ReturnType<typeof prepareInsert>;

/** The leaf of a stored row as hex (what a prev names); a damaged leaf as its text, which no prev matches. */
export function storedLeafHex(leaf: unknown): string {
  return Buffer.isBuffer(leaf) ? leaf.toString('hex') : String(leaf);
}

/**
 * Inserts the batch's rows and payload notes. Call inside an IMMEDIATE transaction: the batch is refused
 * (OpError, nothing written) unless the table ends exactly where it continues, so a batch built on a stale
 * tail (another writer, or a batch before it that failed) never leaves a hole or a fork.
 */
export function insertRows(s: InsertStatements, b: RowBatch): void {
  const last = s.last.get();
  const lastSeq = last === undefined ? -1 : last.seq;
  const lastLeaf = last === undefined ? undefined : storedLeafHex(last.leaf);
  if (lastSeq !== b.firstSeq - 1 || (last !== undefined && lastLeaf !== b.prev)) {
    throw new OpError(
      'Internal',
      `audit batch refused: it continues entry ${b.firstSeq - 1} (leaf ${b.prev.slice(0, 12)}…) but the log ends at ` +
        (last === undefined ? 'no entry' : `entry ${lastSeq} (leaf ${String(lastLeaf).slice(0, 12)}…)`),
    );
  }
  for (const [hash, bytes, stored] of b.payloads) s.notePayload.run(hash, bytes, stored, b.time, b.time);
  // A Buffer view of the hashes: a posted batch arrives with a plain Uint8Array.
  const hashes = Buffer.from(b.hashes.buffer, b.hashes.byteOffset, b.hashes.byteLength);
  const nodesAt = HASH_SIZE * b.capacity;
  const { ends, nodeEnds, labels, kindOf, pluginOf, uids } = b;
  const texts = Buffer.from(b.texts.buffer, b.texts.byteOffset, b.texts.byteLength);
  let textStart = 0;
  let nodesStart = 0;
  for (let i = 0; i < b.count; i++) {
    const bodyEnd = ends[2 * i] as number;
    const summaryEnd = ends[2 * i + 1] as number;
    const nodesEnd = nodeEnds[i] as number;
    s.insertEntry.run(
      b.firstSeq + i,
      texts.toString('utf8', textStart, bodyEnd),
      hashes.subarray(HASH_SIZE * i, HASH_SIZE * (i + 1)),
      b.time,
      labels[kindOf[i] as number] as string,
      labels[pluginOf[i] as number] ?? null,
      Number.isNaN(uids[i]) ? null : (uids[i] as number),
      texts.toString('utf8', bodyEnd, summaryEnd),
      nodesEnd === nodesStart ? null : hashes.subarray(nodesAt + nodesStart, nodesAt + nodesEnd),
    );
    textStart = summaryEnd;
    nodesStart = nodesEnd;
  }
}
