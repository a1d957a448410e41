import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { auditWalkFunction } from '../../../native/index.js';
import { OpError, type ErrorCode } from '../../common/contract/errors.js';
import {
  AuditListRequest,
  type AuditHead,
  type AuditListEntry,
  type AuditListResponse,
  type AuditVerifyResponse,
  type Stats,
} from '../../common/contract/payloads.js';
import {
  insertRows,
  prepareInsert,
  RowBatchBuilder,
  storedLeafHex,
  type InsertStatements,
} from './append-batch.js';
import { AppendWriter, type AppendResult } from './append-writer.js';
import { buildEntry, canonicalPayload, errorText, parseBody, type AppendInput } from './entry.js';
import { firstUnreadableEntry, isCorruption } from './integrity.js';
import { LogTree } from './log-tree.js';
import { HASH_SIZE } from '../../common/transparency/merkle.js';
import { PayloadStore } from './payload-store.js';
import { leafHashHexOfText } from '../../common/transparency/rfc6962.js';
import { compiledWorker, runVerify, workerScript, type VerifyRun } from './verify-threads.js';
import type { VerifyLogWorkerData } from './verify-log-worker.js';
import { extendHex, prepareWalk, ZERO_HASH, type VerifyTask, type WalkStatements } from './verify-walk.js';

export { SUMMARY_MAX, type AppendInput } from './entry.js';
export { ZERO_HASH } from './verify-walk.js';

const SCHEMA_VERSION = '2';
const DEFAULT_LIST_LIMIT = 100;
const HEX64 = /^[0-9a-f]{64}$/;
const DEFAULT_GROUP_WINDOW_MS = 2;
const DEFAULT_MAX_BATCH = 4096;
/** Below this many entries verify walks on one thread: starting a worker costs about as much as ~30k rows. */
const PARALLEL_VERIFY_MIN = 100_000;
/** Entries per verify chunk: small enough to share out evenly, large enough that a chunk's start lookups are noise. */
const VERIFY_CHUNK = 32_768;
const MAX_VERIFY_THREADS = 8;
/** Page cache of the connection: the table and its four indexes' right edges stay in memory while appending. */
const CACHE_KIB = 16_384;
/** appendQueued: batches posted to the writer thread and not yet committed, at most; later ones wait in the queue. */
const MAX_IN_FLIGHT = 4;

const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries(
  seq INTEGER PRIMARY KEY,
  body TEXT NOT NULL,
  leaf BLOB NOT NULL,
  time TEXT,
  kind TEXT,
  plugin TEXT,
  actor_uid INTEGER,
  summary TEXT,
  nodes BLOB
);
CREATE TABLE IF NOT EXISTS payloads(
  hash TEXT PRIMARY KEY,
  bytes INTEGER NOT NULL,
  stored_bytes INTEGER NOT NULL,
  first_time TEXT NOT NULL,
  last_time TEXT NOT NULL,
  pruned_at TEXT,
  pruned_reason TEXT
);
CREATE TABLE IF NOT EXISTS checkpoints(
  size INTEGER PRIMARY KEY,
  root BLOB NOT NULL,
  note TEXT NOT NULL,
  time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_kind_seq ON entries(kind, seq);
CREATE INDEX IF NOT EXISTS entries_plugin_seq ON entries(plugin, seq);
CREATE INDEX IF NOT EXISTS entries_actor_seq ON entries(actor_uid, seq);
CREATE INDEX IF NOT EXISTS entries_time ON entries(time);
`;

/** Options of AuditLog.open. */
export interface AuditLogOptions {
  /** WAL synchronous level: FULL (default) survives power loss; NORMAL only process crashes. */
  synchronous?: 'NORMAL' | 'FULL';
  /** The payload store's directory; default `payloads` beside the database file. */
  payloadDir?: string;
  /** appendQueued: how long the first queued entry waits for others to join its transaction. */
  groupWindowMs?: number;
  /** appendQueued: a batch this large commits at once. */
  maxBatch?: number;
  /**
   * appendQueued: commit batches on a writer thread with its own connection while this thread builds the
   * next (default when the compiled worker exists); false commits them on this thread.
   */
  writerThread?: boolean;
  /** The clock (tests of retention). */
  now?: () => Date;
}

/** What a payload hash leads to: the payload, or when and why it was pruned. */
export type PayloadInfo =
  | { status: 'stored'; payload: unknown }
  | { status: 'pruned'; prunedAt: string; reason: string }
  | { status: 'unknown' };

/** Retention of payloads: leaves and entries are never pruned, only the payload files they name. */
export interface RetentionPolicy {
  /** Payloads last named longer ago than this are pruned. */
  maxAgeMs?: number;
  /** While the stored (compressed) payloads exceed this, the least recently named are pruned. */
  maxBytes?: number;
}

/** A signed checkpoint as the log keeps it. */
export interface StoredCheckpoint {
  size: number;
  root: Buffer;
  note: string;
  time: string;
}

/** How verify spreads its walk (defaults: one thread below 100,000 entries, else one per core up to 8). */
export interface VerifyOptions {
  /** Threads in all, the calling one included. */
  threads?: number;
  /** Entries per chunk handed to a thread. */
  chunkSize?: number;
  /** Chunk c goes to thread c mod threads (deterministic, for tests). */
  roundRobin?: boolean;
  /** false: no native fast path, every row walked in TypeScript (tests compare the two). */
  native?: boolean;
}
type ListRow = { seq: number; body: string; leaf: unknown };
type PayloadRow = {
  hash: string;
  stored_bytes: number;
  pruned_at: string | null;
  pruned_reason: string | null;
};
type CheckpointRow = { size: number; root: Buffer; note: string; time: string };

interface Queued {
  input: AppendInput;
  resolve: (e: AuditListEntry) => void;
  reject: (e: unknown) => void;
}

/** A batch posted to the writer thread and not yet answered. */
interface Posted {
  firstSeq: number;
  entries: AuditListEntry[];
  /** The queued appends of `entries`, in the same order. */
  waiting: Queued[];
}

/** Where the next row continues the chain: its seq and the leaf (hex) its prev names. */
interface Tail {
  seq: number;
  prev: string;
}

/** A batch's rows as build made them, the appends they hold, and where chain and border stand after them. */
interface Built {
  rows: RowBatchBuilder;
  entries: AuditListEntry[];
  /** Index in the inputs of each entry. */
  kept: number[];
  frontier: (string | undefined)[];
  next: Tail;
}

/**
 * The append-only audit log (DESIGN.md section 5): hash-chained entries in one SQLite file, the
 * RFC 6962 Merkle tree over them in the same rows, payloads in a content-addressed zstd store, and
 * the signed checkpoints the core has issued.
 */
export class AuditLog {
  private readonly listStatements = new Map<string, Database.Statement<(string | number)[], ListRow>>();
  private readonly tree: LogTree;
  private readonly now: () => Date;
  private readonly groupWindowMs: number;
  private readonly maxBatch: number;
  private readonly synchronous: 'NORMAL' | 'FULL';
  private queue: Queued[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly stmts: Statements;
  private readonly insert: InsertStatements;
  private readonly walkStmts: WalkStatements;
  /** The compiled writer thread; undefined: appendQueued commits on this thread. */
  private writerScript: URL | undefined;
  /** Started at the first batch appendQueued posts. */
  private writer: AppendWriter | undefined;
  /** Batches posted to the writer, oldest first; the tree and `tail` already include them. */
  private posted: Posted[] = [];
  private tail: Tail = { seq: 0, prev: ZERO_HASH };
  /** Why a posted batch failed, while batches posted after it (which the writer refuses) are outstanding. */
  private failure: string | undefined;
  /** Set while this thread blocks for the writer's answers: they must not post more batches meanwhile. */
  private draining = false;

  private constructor(
    private readonly db: Database.Database,
    readonly payloads: PayloadStore,
    opts: AuditLogOptions,
  ) {
    this.now = opts.now ?? (() => new Date());
    this.groupWindowMs = opts.groupWindowMs ?? DEFAULT_GROUP_WINDOW_MS;
    this.maxBatch = Math.max(1, opts.maxBatch ?? DEFAULT_MAX_BATCH);
    this.synchronous = opts.synchronous === 'NORMAL' ? 'NORMAL' : 'FULL';
    this.stmts = prepareStatements(db);
    this.insert = prepareInsert(db);
    this.walkStmts = prepareWalk(db);
    // Unicode case folding for text filters with non-ASCII needles: SQLite's LIKE folds ASCII only.
    db.function('audit_lower', { deterministic: true }, (s: unknown) =>
      typeof s === 'string' ? s.toLowerCase() : s,
    );
    this.tree = new LogTree(db);
    this.syncTree();
    this.writerScript =
      opts.writerThread === false || db.memory ? undefined : compiledWorker('append-worker.js');
  }

  /** Opens (creating if missing) the log at `file`: WAL journal, synchronous FULL unless told otherwise. */
  static open(file: string, opts: AuditLogOptions = {}): AuditLog {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const payloads = new PayloadStore(opts.payloadDir ?? join(dirname(file), 'payloads'));
    let db: Database.Database;
    try {
      db = new Database(file);
    } catch (e) {
      throw new OpError('AuditCorrupt', `cannot open audit log: ${errorText(e)}`, { file });
    }
    try {
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${opts.synchronous === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
      db.pragma(`cache_size = -${CACHE_KIB}`);
      db.transaction(() => {
        const hasMeta = db
          .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")
          .get();
        const version = hasMeta
          ? db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema_version'").get()
              ?.value
          : undefined;
        if (version === '1') migrateFromV1(db, payloads);
        db.exec(SCHEMA_SQL);
        db.prepare("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)").run(SCHEMA_VERSION);
      }).immediate();
      const version = db
        .prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema_version'")
        .get();
      if (version?.value !== SCHEMA_VERSION) {
        throw new OpError(
          'AuditCorrupt',
          `audit log schema version ${version?.value ?? '(none)'} is not supported (expected ${SCHEMA_VERSION})`,
          { file },
        );
      }
      return new AuditLog(db, payloads, opts);
    } catch (e) {
      db.close();
      if (e instanceof OpError) throw e;
      throw new OpError('AuditCorrupt', `cannot open audit log: ${errorText(e)}`, { file });
    }
  }

  /**
   * Starts the writer thread now rather than at the first queued append, which would otherwise wait
   * for it to boot (~140 ms measured here: loading its modules and opening its connection). The core
   * calls it at start-up, so its first plan does not pay for that. No-op where appends are in-thread.
   */
  startWriterThread(): void {
    this.startWriter();
  }

  /** Whether the writer thread has been started and has not stopped. */
  get writerRunning(): boolean {
    return this.writer !== undefined && !this.writer.stopped;
  }

  /** Whether appendQueued commits on the writer thread (not without a compiled worker, with writerThread false, or after it stopped). */
  get writesOffThread(): boolean {
    return this.writerScript !== undefined;
  }

  /** Where this log's heavy work runs here (the Stats answer's `audit`): it differs in the single executable. */
  get mechanics(): NonNullable<Stats['audit']> {
    return {
      writer: this.writesOffThread ? 'thread' : 'in-thread',
      verify_workers: compiledWorker('verify-log-worker.js') !== undefined && workerScript() !== undefined,
      native_walk: auditWalkFunction() !== undefined,
    };
  }

  /** Appends one entry in its own transaction (committed when this returns) and returns it with its leaf. */
  append(input: AppendInput): AuditListEntry {
    const out = this.appendMany([input])[0];
    if (out === undefined) throw new OpError('Internal', 'append wrote no entry');
    return out;
  }

  /**
   * Group commit: queues the entry and resolves once the transaction holding it has committed.
   * Entries queued within `groupWindowMs` of the first (or `maxBatch` of them) share one transaction.
   * A bad entry is rejected alone, before it takes a seq; the others of its batch are still written.
   * With the writer thread, this thread builds the next batch while that one commits the last; when
   * a batch fails, it and every batch posted after it are rejected and later appends go on from the table.
   */
  appendQueued(input: AppendInput): Promise<AuditListEntry> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (this.queue.length >= this.maxBatch) this.commitQueued();
      else this.flushTimer ??= setTimeout(() => this.commitQueued(), this.groupWindowMs);
    });
  }

  /**
   * Commits every queued entry now and waits for every batch in flight (append calls it first, so entries
   * keep the order they were given in).
   */
  flush(): void {
    this.clearFlushTimer();
    this.draining = true;
    try {
      do {
        // After a failure the batches after it are refused: wait for them, so the queue continues from the table.
        if (this.failure !== undefined) this.writer?.drain();
        while (this.queue.length > 0) this.post(this.takeQueued(this.maxBatch));
        // A writer that stops puts what it did not commit back in the queue.
        this.writer?.drain();
      } while (this.queue.length > 0);
    } finally {
      this.draining = false;
    }
    this.clearFlushTimer();
  }

  /** Appends entries in order, all in ONE transaction: either all are written or none. */
  appendMany(inputs: AppendInput[]): AuditListEntry[] {
    this.flush();
    return this.write(inputs).entries;
  }

  /** Posts queued batches to the writer while fewer than MAX_IN_FLIGHT are in flight (never waits for it). */
  private commitQueued(): void {
    this.clearFlushTimer();
    // The rest waits for an answer (afterAnswer posts it); after a failure, for the table to be read again.
    while (this.queue.length > 0 && this.failure === undefined && this.posted.length < MAX_IN_FLIGHT) {
      this.post(this.takeQueued(this.maxBatch));
    }
  }

  private takeQueued(n: number): Queued[] {
    if (n >= this.queue.length) {
      const all = this.queue;
      this.queue = [];
      return all;
    }
    return this.queue.splice(0, n);
  }

  private clearFlushTimer(): void {
    if (this.flushTimer !== undefined) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
  }

  /** Commits queued appends in one transaction on this thread; a bad input is rejected alone. */
  private writeHere(batch: Queued[]): void {
    if (batch.length === 0) return;
    let out: { entries: AuditListEntry[]; kept: number[] };
    try {
      out = this.write(
        batch.map((q) => q.input),
        (i, e) => batch[i]?.reject(e),
      );
    } catch (e) {
      for (const q of batch) q.reject(e); // a promise already rejected stays as it was
      return;
    }
    out.kept.forEach((i, k) => batch[i]?.resolve(out.entries[k] as AuditListEntry));
  }

  /**
   * Builds the rows of `batch` on the tree (which moves on at once) and hands them to the writer thread.
   * Payload files are written and fsynced here, before the batch that names them is posted.
   */
  private post(batch: Queued[]): void {
    const writer = this.startWriter();
    if (writer === undefined) {
      this.writeHere(batch);
      return;
    }
    if (this.posted.length === 0) this.tail = this.readTail();
    let built: Built;
    try {
      built = this.build(
        batch.map((q) => q.input),
        this.tail,
        this.now().toISOString(),
        (i, e) => batch[i]?.reject(e),
      );
    } catch (e) {
      for (const q of batch) q.reject(e);
      return;
    }
    if (built.rows.size === 0) return;
    this.advanceTree(built);
    this.posted.push({
      firstSeq: this.tail.seq,
      entries: built.entries,
      waiting: built.kept.map((i) => batch[i] as Queued),
    });
    this.tail = built.next;
    writer.post(built.rows.finish());
  }

  private startWriter(): AppendWriter | undefined {
    if (this.writer === undefined && this.writerScript !== undefined) {
      try {
        this.writer = new AppendWriter(
          this.writerScript,
          { file: this.db.name, synchronous: this.synchronous, cacheKib: CACHE_KIB },
          (r) => this.settle(r),
          (reason) => this.writerStopped(reason),
        );
      } catch {
        this.writerScript = undefined;
      }
    }
    return this.writer;
  }

  /** The writer's answer to the oldest posted batch: its appends resolve, or are rejected. */
  private settle(r: AppendResult): void {
    if (!r.ok && r.fatal) {
      this.writer?.close();
      this.writerStopped(`audit writer thread cannot write: ${r.message}`);
      return;
    }
    const batch = this.posted.shift();
    if (batch === undefined) return;
    if (r.ok) {
      batch.waiting.forEach((q, i) => q.resolve(batch.entries[i] as AuditListEntry));
    } else {
      const range = `entries ${batch.firstSeq}..${batch.firstSeq + batch.entries.length - 1}`;
      const error =
        this.failure === undefined
          ? new OpError(r.code, `audit append of ${range} failed: ${r.message}`)
          : new OpError(
              r.code,
              `audit append of ${range} refused: an earlier batch failed (${this.failure})`,
            );
      this.failure ??= r.message;
      for (const q of batch.waiting) q.reject(error);
    }
    this.afterAnswer();
  }

  /**
   * The writer thread is gone (or cannot open the log): appends commit on this thread from now on. Of the
   * batches it did not answer, those the table holds resolve; the others go back to the front of the queue
   * (rejected instead when a batch before them failed).
   */
  private writerStopped(reason: string): void {
    const posted = this.posted;
    this.posted = [];
    this.writer = undefined;
    this.writerScript = undefined;
    if (posted.length > 0) {
      const tail = this.readTail();
      const retry: Queued[] = [];
      for (const batch of posted) {
        const lastSeq = batch.firstSeq + batch.entries.length - 1;
        const row = lastSeq < tail.seq ? this.stmts.rowAt.get(lastSeq) : undefined;
        if (row !== undefined && storedLeafHex(row.leaf) === batch.entries[batch.entries.length - 1]?.leaf) {
          batch.waiting.forEach((q, i) => q.resolve(batch.entries[i] as AuditListEntry));
        } else if (this.failure !== undefined) {
          const error = new OpError(
            'Internal',
            `audit append of entries ${batch.firstSeq}..${lastSeq} refused: an earlier batch failed (${this.failure}); ${reason}`,
          );
          for (const q of batch.waiting) q.reject(error);
        } else {
          retry.push(...batch.waiting);
        }
      }
      this.queue = [...retry, ...this.queue];
    }
    this.afterAnswer();
  }

  private afterAnswer(): void {
    // All answered: the next batch starts from what the table holds (syncTree), failure or not.
    if (this.posted.length === 0) this.failure = undefined;
    if (this.queue.length === 0) return;
    if (this.draining) this.flushTimer ??= setTimeout(() => this.commitQueued(), this.groupWindowMs);
    else this.commitQueued();
  }

  /** Waits for every batch in flight, so what this thread reads next includes them. */
  private drainWriter(): void {
    if (this.posted.length === 0) return;
    this.draining = true;
    try {
      this.writer?.drain();
    } finally {
      this.draining = false;
    }
  }

  /** The table's end, with the tree brought in line with it (one read transaction). */
  private readTail(): Tail {
    return this.db.transaction(() => this.tailNow()).deferred();
  }

  /** The seq the next entry takes and the leaf its prev names, after syncTree (call inside a transaction). */
  private tailNow(): Tail {
    const last = this.syncTree();
    return last === undefined ? { seq: 0, prev: ZERO_HASH } : { seq: last.seq + 1, prev: last.leafHex };
  }

  /** Writes entries in one IMMEDIATE transaction on this thread; `refuse` takes bad inputs (else they throw). */
  private write(
    inputs: AppendInput[],
    refuse?: (i: number, e: unknown) => void,
  ): { entries: AuditListEntry[]; kept: number[] } {
    if (inputs.length === 0) return { entries: [], kept: [] };
    const time = this.now().toISOString();
    // IMMEDIATE takes the write lock before reading the chain's tail, so no other writer can slip in between.
    return this.db
      .transaction(() => {
        const built = this.build(inputs, this.tailNow(), time, refuse);
        if (built.rows.size > 0) {
          insertRows(this.insert, built.rows.finish());
          this.advanceTree(built);
        }
        return built;
      })
      .immediate();
  }

  /**
   * The rows for `inputs` continuing `tail` on the current tree border (the tree itself is not moved).
   * An input buildEntry or its payload refuses goes to `refuse` and takes no seq; without `refuse` it throws.
   */
  private build(
    inputs: readonly AppendInput[],
    tail: Tail,
    time: string,
    refuse: ((i: number, e: unknown) => void) | undefined,
  ): Built {
    const rows = new RowBatchBuilder(tail.seq, tail.prev, time, inputs.length);
    let { seq, prev } = tail;
    // The border as hex for this batch: nodeHashHex and leafHashHexOfText make no Buffer (measured ~0.5 µs
    // each); it goes back to Buffers once per batch.
    const frontier = this.tree.border.map((node) => node?.toString('hex'));
    const entries: AuditListEntry[] = [];
    const kept: number[] = [];
    for (let i = 0; i < inputs.length; i++) {
      const input = inputs[i] as AppendInput;
      let built: ReturnType<typeof buildEntry>;
      try {
        const payload = input.payload === undefined ? null : canonicalPayload(input.payload);
        built = buildEntry(input, seq, prev, time, payload);
        if (payload !== null) {
          // Written (and fsynced) before the transaction that names it commits.
          const stored = this.payloads.put(payload.hash, payload.json);
          rows.notePayload(payload.hash, Buffer.byteLength(payload.json), stored);
        }
      } catch (e) {
        if (refuse === undefined) throw e;
        refuse(i, e);
        continue;
      }
      const { entry, body } = built;
      const leafHex = leafHashHexOfText(body);
      rows.add(
        body,
        leafHex,
        extendHex(frontier, seq, leafHex),
        entry.kind,
        entry.plugin,
        entry.actor.uid,
        entry.summary,
      );
      // The entry object is ours (buildEntry made it): add the leaf rather than copy it.
      const listed = entry as AuditListEntry;
      listed.leaf = leafHex;
      entries.push(listed);
      kept.push(i);
      seq += 1;
      prev = leafHex;
    }
    return { rows, entries, kept, frontier, next: { seq, prev } };
  }

  private advanceTree(built: Built): void {
    this.tree.advance(
      built.next.seq,
      built.frontier.map((node) => (node === undefined ? undefined : Buffer.from(node, 'hex'))),
      Buffer.from(built.next.prev, 'hex'),
    );
  }
  /**
   * Reads the table's last row and reloads the cached tree border if the table changed behind our
   * back (a test or an attacker writing the file); returns that row.
   */
  private syncTree(): { seq: number; leafHex: string } | undefined {
    const last = this.insert.last.get();
    const leaf = last !== undefined && Buffer.isBuffer(last.leaf) ? last.leaf : undefined;
    const size = last === undefined ? 0 : last.seq + 1;
    if (!this.tree.matches(size, leaf)) {
      try {
        this.tree.load(size, leaf);
      } catch (e) {
        // The tree cannot be read back (entries deleted or nodes damaged): appends still chain; verify names it.
        this.tree.advance(0, [], Buffer.alloc(0));
        if (!(e instanceof OpError)) throw e;
      }
    }
    if (last === undefined) return undefined;
    return { seq: last.seq, leafHex: storedLeafHex(last.leaf) };
  }

  /** Entries newest first, filtered by time, kind, plugin, actor uid and summary text, paged by `beforeSeq`. */
  list(req: AuditListRequest): AuditListResponse {
    const parsed = AuditListRequest.safeParse(req);
    if (!parsed.success) {
      throw new OpError('InvalidArgument', `invalid audit list request: ${parsed.error.message}`);
    }
    const r = parsed.data;
    this.drainWriter();
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (r.beforeSeq !== undefined) {
      where.push('seq < ?');
      params.push(r.beforeSeq);
    }
    if (r.since !== undefined) {
      where.push('time >= ?');
      params.push(isoTime(r.since, 'since'));
    }
    if (r.until !== undefined) {
      where.push('time < ?');
      params.push(isoTime(r.until, 'until'));
    }
    if (r.kind !== undefined) {
      where.push('kind = ?');
      params.push(r.kind);
    }
    if (r.plugin !== undefined) {
      where.push('plugin = ?');
      params.push(r.plugin);
    }
    if (r.actor !== undefined) {
      where.push('actor_uid = ?');
      params.push(r.actor);
    }
    if (r.text !== undefined && r.text !== '') {
      if (isAscii(r.text)) {
        where.push("summary LIKE ? ESCAPE '\\'");
        params.push(`%${escapeLike(r.text)}%`);
      } else {
        where.push('instr(audit_lower(summary), ?) > 0');
        params.push(r.text.toLowerCase());
      }
    }
    params.push(r.limit ?? DEFAULT_LIST_LIMIT);
    const sql = `SELECT seq, body, leaf FROM entries${
      where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''
    } ORDER BY seq DESC LIMIT ?`;
    let stmt = this.listStatements.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare<(string | number)[], ListRow>(sql);
      this.listStatements.set(sql, stmt);
    }
    const entries = stmt.all(...params).map((row) => {
      const entry = parseBody(row.body);
      if (typeof entry === 'string' || !Buffer.isBuffer(row.leaf)) {
        throw new OpError(
          'AuditCorrupt',
          `entry ${row.seq}: ${typeof entry === 'string' ? entry : 'stored leaf is not a hash'}; run verify`,
        );
      }
      return { ...entry, leaf: row.leaf.toString('hex') };
    });
    return { entries, size: this.head().size };
  }

  /** The stored payload with this content hash, or undefined if there is none (or it was pruned). */
  payload(hash: string): unknown {
    const info = this.payloadInfo(hash);
    return info.status === 'stored' ? info.payload : undefined;
  }

  /** The payload with this hash, or when and why it was pruned, or that the log never had it. */
  payloadInfo(hash: string): PayloadInfo {
    if (!HEX64.test(hash))
      throw new OpError('InvalidArgument', `not a payload hash: ${JSON.stringify(hash)}`);
    this.drainWriter();
    const row = this.stmts.payloadRow.get(hash);
    if (row?.pruned_at != null) {
      return { status: 'pruned', prunedAt: row.pruned_at, reason: row.pruned_reason ?? '' };
    }
    const text = this.payloads.get(hash);
    if (text === undefined) {
      if (row === undefined) return { status: 'unknown' };
      throw new OpError(
        'AuditCorrupt',
        `payload ${hash}: the index says it is stored but its file is missing`,
        { file: this.payloads.pathOf(hash) },
      );
    }
    return { status: 'stored', payload: JSON.parse(text) as unknown };
  }

  /**
   * Retention: prunes payload files by age, then by total size (least recently named first). The
   * entries and their leaves stay; each pruned payload records when and why.
   */
  prunePayloads(policy: RetentionPolicy): { pruned: number; bytesFreed: number } {
    const now = this.now();
    const at = now.toISOString();
    let pruned = 0;
    let bytesFreed = 0;
    const prune = (row: PayloadRow, reason: string): void => {
      this.stmts.markPruned.run(at, reason, row.hash);
      this.payloads.remove(row.hash);
      pruned += 1;
      bytesFreed += row.stored_bytes;
    };
    this.flush();
    this.db
      .transaction(() => {
        if (policy.maxAgeMs !== undefined) {
          const cutoff = new Date(now.getTime() - policy.maxAgeMs).toISOString();
          const days = +(policy.maxAgeMs / 86_400_000).toFixed(3);
          for (const row of this.stmts.payloadsOlderThan.all(cutoff)) {
            prune(row, `retention: not named by any entry since ${cutoff} (max age ${days} days)`);
          }
        }
        if (policy.maxBytes !== undefined) {
          let total = this.stmts.storedBytes.get() ?? 0;
          if (total > policy.maxBytes) {
            for (const row of this.stmts.payloadsOldestFirst.all()) {
              if (total <= policy.maxBytes) break;
              total -= row.stored_bytes;
              prune(
                row,
                `retention: payload store over ${policy.maxBytes} bytes; least recently named (then largest) pruned first`,
              );
            }
          }
        }
      })
      .immediate();
    return { pruned, bytesFreed };
  }

  /**
   * The size and last leaf of the log. Size is last seq + 1 (an O(1) lookup): that is the Merkle tree
   * size, and it equals the row count in every log that verify accepts.
   */
  head(): AuditHead {
    this.drainWriter();
    const last = this.insert.last.get();
    if (last === undefined) return { size: 0, head: ZERO_HASH };
    return {
      size: last.seq + 1,
      head: storedLeafHex(last.leaf),
    };
  }

  /** The Merkle tree size and root now (one read transaction). */
  treeHead(): { size: number; root: Buffer } {
    this.drainWriter();
    return this.db
      .transaction(() => {
        this.syncTree();
        return { size: this.tree.size, root: this.tree.currentRoot() };
      })
      .deferred();
  }

  /** Root of the tree when it had `size` entries. */
  rootAt(size: number): Buffer {
    return this.readTree(() => this.tree.root(size));
  }

  /** Inclusion proof of entry `seq` in the tree of `size` entries, and the entry's exact leaf bytes. */
  inclusionProof(seq: number, size: number): { body: string; proof: Buffer[] } {
    return this.readTree(() => {
      const proof = this.tree.inclusionProof(seq, size);
      const row = this.stmts.bodyAt.get(seq);
      if (row === undefined || typeof row.body !== 'string') {
        throw new OpError('AuditCorrupt', `entry ${seq} is missing or has no body; run verify`);
      }
      return { body: row.body, proof };
    });
  }

  /** Consistency proof from the tree of `oldSize` entries to the tree of `newSize`. */
  consistencyProof(oldSize: number, newSize: number): Buffer[] {
    return this.readTree(() => this.tree.consistencyProof(oldSize, newSize));
  }

  /** Entries from `fromSeq` on, at most `limit`, as the exact bytes hashed as their RFC 6962 leaves. */
  exportLeaves(fromSeq: number, limit: number): { seq: number; body: string }[] {
    this.drainWriter();
    return this.stmts.exportRange.all(fromSeq, limit).map(([seq, body]) => ({ seq, body }));
  }

  /** Records a checkpoint the core signed. */
  saveCheckpoint(cp: StoredCheckpoint): void {
    this.drainWriter();
    this.stmts.insertCheckpoint.run(cp.size, cp.root, cp.note, cp.time);
  }

  /** The checkpoint of the largest size the log has issued, if any. */
  latestCheckpoint(): StoredCheckpoint | undefined {
    return this.stmts.latestCheckpoint.get();
  }

  /** The checkpoint issued at exactly this size, if any. */
  checkpointAt(size: number): StoredCheckpoint | undefined {
    return this.stmts.checkpointAt.get(size);
  }

  /**
   * Walks every entry in seq order (streaming) and names the first bad one: body, chain, index
   * columns, and the Merkle nodes stored with each row. Against a head saved earlier, and against every
   * checkpoint the log itself has issued, it also catches truncation and consistent rewrites of history.
   */
  verify(checkpoint?: AuditHead): AuditVerifyResponse {
    try {
      return this.verifyRun(checkpoint).response;
    } catch (e) {
      if (!isCorruption(e)) throw e;
      return this.damagedVerdict(e);
    }
  }

  /**
   * verify's answer for a file SQLite calls damaged: the first entry that cannot be read back is the first
   * bad one. When every entry reads back, the damage is outside them, and no entry can be named.
   */
  private damagedVerdict(e: unknown): AuditVerifyResponse {
    const first = firstUnreadableEntry(this.db);
    if (first === undefined) {
      throw new OpError(
        'AuditCorrupt',
        `the audit log's database is damaged outside its entries (SQLite: ${errorText(e)}): every entry reads back`,
        { file: this.db.name },
      );
    }
    let head: AuditHead;
    try {
      head = this.head();
    } catch {
      head = first.readable;
    }
    return { ok: false, ...head, firstBad: { seq: first.seq, reason: first.reason } };
  }

  /**
   * verify on a worker thread with its own connection, so the caller's event loop keeps running (a
   * verify of 1M entries takes seconds); on this thread when no compiled worker exists.
   */
  verifyOffThread(checkpoint?: AuditHead): Promise<AuditVerifyResponse> {
    const script = compiledWorker('verify-log-worker.js');
    if (script === undefined) return Promise.resolve(this.verify(checkpoint));
    this.flush(); // entries already acknowledged must be in what the worker reads
    const data: VerifyLogWorkerData = { file: this.db.name, payloadDir: this.payloads.dir, checkpoint };
    return new Promise((resolve, reject) => {
      const worker = new Worker(script, { workerData: data });
      worker.once('message', (m: { response?: AuditVerifyResponse; error?: string; code?: ErrorCode }) => {
        if (m.response !== undefined) resolve(m.response);
        else reject(new OpError(m.code ?? 'Internal', `audit verify failed: ${m.error ?? 'no answer'}`));
      });
      worker.once('error', (e) => reject(new OpError('Internal', `audit verify worker: ${e.message}`)));
      worker.once('exit', (code) => {
        if (code !== 0) reject(new OpError('Internal', `audit verify worker exited with ${code}`));
      });
    });
  }

  /**
   * verify, and how it ran. The walk is split into chunks of seq that threads (this one and workers with
   * their own read-only connections) walk in parallel; the chunks are then stitched in seq order (the
   * chain's prev and the Merkle border across each boundary), so the answer, the first bad entry
   * included, is exactly that of one walk from entry 0. Blocks until done, like the one-thread walk.
   */
  verifyRun(
    checkpoint?: AuditHead,
    opts: VerifyOptions = {},
  ): { response: AuditVerifyResponse; run: VerifyRun } {
    if (checkpoint !== undefined) {
      if (!Number.isSafeInteger(checkpoint.size) || checkpoint.size < 0 || !HEX64.test(checkpoint.head)) {
        throw new OpError(
          'InvalidArgument',
          'checkpoint must be {size: non-negative integer, head: 64 hex digits}',
        );
      }
    }
    this.flush();
    // One read transaction: the walk (on this thread) and the reported head see the same snapshot; workers
    // read rows up to that head's seq.
    return this.db
      .transaction(() => {
        const { size, head } = this.head();
        const issued = this.stmts.allCheckpoints.all().map((cp) => ({
          size: cp.size,
          rootHex: Buffer.isBuffer(cp.root) ? cp.root.toString('hex') : '',
          time: cp.time,
        }));
        const threads = Math.max(
          1,
          Math.floor(
            opts.threads ??
              (size < PARALLEL_VERIFY_MIN ? 1 : Math.min(availableParallelism(), MAX_VERIFY_THREADS)),
          ),
        );
        const chunkSize = Math.max(1, Math.floor(opts.chunkSize ?? VERIFY_CHUNK));
        const lastSeq = size - 1;
        const task: VerifyTask = {
          checkpoint: checkpoint === undefined ? undefined : { size: checkpoint.size, head: checkpoint.head },
          issued,
          lastSeq,
          chunkSize,
          chunks: threads === 1 || lastSeq < 0 ? 1 : Math.floor(lastSeq / chunkSize) + 1,
          ...(opts.native === false ? { native: false } : {}),
        };
        const file = this.db.memory ? undefined : this.db.name;
        const run = runVerify(this.walkStmts, file, task, {
          threads,
          ...(opts.roundRobin === undefined ? {} : { roundRobin: opts.roundRobin }),
        });
        const response: AuditVerifyResponse =
          run.firstBad === undefined
            ? { ok: true, size, head }
            : { ok: false, size, head, firstBad: run.firstBad };
        return { response, run };
      })
      .deferred();
  }

  /** Commits what is queued, waits for the writer thread and ends it, and closes the database; the object is unusable afterwards. */
  close(): void {
    this.flush();
    this.writer?.close();
    this.writer = undefined;
    this.writerScript = undefined;
    this.db.close();
  }

  private readTree<T>(fn: () => T): T {
    this.drainWriter();
    return this.db
      .transaction(() => {
        this.syncTree();
        return fn();
      })
      .deferred();
  }
}

/** Every statement the log runs more than once, prepared at open. */
function prepareStatements(db: Database.Database) {
  return {
    rowAt: db.prepare<[number], { leaf: unknown; nodes: unknown }>(
      'SELECT leaf, nodes FROM entries WHERE seq = ?',
    ),
    bodyAt: db.prepare<[number], { body: unknown }>('SELECT body FROM entries WHERE seq = ?'),
    payloadRow: db.prepare<[string], PayloadRow>(
      'SELECT hash, stored_bytes, pruned_at, pruned_reason FROM payloads WHERE hash = ?',
    ),
    payloadsOlderThan: db.prepare<[string], PayloadRow>(
      'SELECT hash, stored_bytes, pruned_at, pruned_reason FROM payloads WHERE pruned_at IS NULL AND last_time < ? ORDER BY last_time',
    ),
    payloadsOldestFirst: db.prepare<[], PayloadRow>(
      'SELECT hash, stored_bytes, pruned_at, pruned_reason FROM payloads WHERE pruned_at IS NULL ORDER BY last_time, stored_bytes DESC, hash',
    ),
    storedBytes: db
      .prepare<[], number>('SELECT coalesce(sum(stored_bytes), 0) FROM payloads WHERE pruned_at IS NULL')
      .pluck(),
    markPruned: db.prepare<[string, string, string]>(
      'UPDATE payloads SET pruned_at = ?, pruned_reason = ? WHERE hash = ?',
    ),
    exportRange: db
      .prepare<[number, number], [number, string]>(
        'SELECT seq, body FROM entries WHERE seq >= ? ORDER BY seq LIMIT ?',
      )
      .raw(true),
    insertCheckpoint: db.prepare<[number, Buffer, string, string]>(
      'INSERT OR REPLACE INTO checkpoints(size, root, note, time) VALUES (?, ?, ?, ?)',
    ),
    latestCheckpoint: db.prepare<[], CheckpointRow>(
      'SELECT size, root, note, time FROM checkpoints ORDER BY size DESC LIMIT 1',
    ),
    checkpointAt: db.prepare<[number], CheckpointRow>(
      'SELECT size, root, note, time FROM checkpoints WHERE size = ?',
    ),
    allCheckpoints: db.prepare<[], CheckpointRow>(
      'SELECT size, root, note, time FROM checkpoints ORDER BY size',
    ),
  };
}
type Statements = ReturnType<typeof prepareStatements>;

/** Moves a schema-1 log to schema 2: Merkle nodes into the rows, payload texts into the store. */
function migrateFromV1(db: Database.Database, store: PayloadStore): void {
  db.exec('ALTER TABLE entries ADD COLUMN nodes BLOB');
  const update = db.prepare<[Buffer, number]>('UPDATE entries SET nodes = ? WHERE seq = ?');
  let frontier: (Buffer | undefined)[] = [];
  let expected = 0;
  for (const [seq, leaf] of db
    .prepare<[], [number, unknown]>('SELECT seq, leaf FROM entries ORDER BY seq')
    .raw(true)
    .all()) {
    // A damaged log is migrated as far as it is whole; verify then names where it breaks.
    if (seq !== expected || !Buffer.isBuffer(leaf) || leaf.length !== HASH_SIZE) break;
    const extended = LogTree.extend(frontier, seq, leaf);
    if (extended.nodes !== null) update.run(extended.nodes, seq);
    frontier = extended.frontier;
    expected += 1;
  }
  db.exec('ALTER TABLE payloads RENAME TO payloads_v1');
  db.exec(SCHEMA_SQL);
  const now = new Date().toISOString();
  const insert = db.prepare<[string, number, number, string, string]>(
    'INSERT INTO payloads(hash, bytes, stored_bytes, first_time, last_time) VALUES (?, ?, ?, ?, ?)',
  );
  for (const row of db
    .prepare<[], { hash: string; json: string }>('SELECT hash, json FROM payloads_v1')
    .all()) {
    insert.run(row.hash, Buffer.byteLength(row.json), store.put(row.hash, row.json), now, now);
  }
  db.exec('DROP TABLE payloads_v1');
  db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(SCHEMA_VERSION);
}

/** An ISO 8601 time as the entries store it (UTC, milliseconds), or InvalidArgument naming the field. */
function isoTime(text: string, field: string): string {
  const t = new Date(text);
  if (Number.isNaN(t.getTime())) {
    throw new OpError(
      'InvalidArgument',
      `${field}: ${JSON.stringify(text)} is not a date or time (ISO 8601)`,
    );
  }
  return t.toISOString();
}

function isAscii(text: string): boolean {
  return /^[\x00-\x7f]*$/.test(text);
}

/** Escapes LIKE's wildcards (and the escape character itself) so the text matches literally. */
function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
