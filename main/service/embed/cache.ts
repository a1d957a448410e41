import { hash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import type { Embedder, ModelInfo } from './embedder.js';

/**
 * The embedding cache (DESIGN.md section 6, the seed's layer 1): key = SHA-256(model id, normalised
 * text); an in-process LRU over one Float32Array slab, then a persistent tier of a SQLite index and
 * one append-only vector file read with pread. Both tiers are bounded and evict least recently used.
 */

/** Upper bounds (µs) of the latency histogram's buckets; the last bucket is everything above. */
export const LATENCY_BUCKETS_US = [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096] as const;

export interface TierStats {
  hits: number;
  misses: number;
  evictions: number;
  entries: number;
  bytes: number;
  /** Lookup latency (hits and misses), counts per LATENCY_BUCKETS_US bucket plus one overflow. */
  latencyUs: { buckets: number[]; counts: number[] };
}

export interface CacheStats {
  model: string;
  memory: TierStats;
  persistent: TierStats;
  /** The last time the vector file was found damaged and rebuilt, in words. */
  lastRebuild: string | null;
}

function tierStats(): TierStats {
  return {
    hits: 0,
    misses: 0,
    evictions: 0,
    entries: 0,
    bytes: 0,
    latencyUs: {
      buckets: [...LATENCY_BUCKETS_US],
      counts: new Array<number>(LATENCY_BUCKETS_US.length + 1).fill(0),
    },
  };
}

function record(t: TierStats, startMs: number): void {
  const us = (performance.now() - startMs) * 1000;
  let i = 0;
  while (i < LATENCY_BUCKETS_US.length && us > (LATENCY_BUCKETS_US[i] ?? Infinity)) i++;
  t.latencyUs.counts[i] = (t.latencyUs.counts[i] ?? 0) + 1;
}

/** What the cache treats as the same text: Unicode NFC, whitespace runs as one space, trimmed. */
export function normaliseText(text: string): string {
  // the common text (ASCII, single spaces, nothing at the ends) is its own normal form: a hit is
  // microseconds, and normalize() + replace() copy the text even when they change nothing
  const nfc = NON_ASCII.test(text) ? text.normalize('NFC') : text;
  return UNUSUAL_SPACE.test(nfc) ? nfc.replace(/\s+/g, ' ').trim() : nfc;
}

const NON_ASCII = /[^\x00-\x7f]/;
/** Whitespace that normaliseText changes: any but a single inner space. */
const UNUSUAL_SPACE = /[^\S ]| {2}|^ | $/;

/** normaliseText without its fast path (the reference the tests compare it with). */
export function normaliseTextSlowly(text: string): string {
  return text.normalize('NFC').replace(/\s+/gu, ' ').trim();
}

/** The cache key of a text under a model (base64 of the SHA-256). */
export function cacheKey(modelId: string, text: string): string {
  return hash('sha256', `${modelId}\u0000${normaliseText(text)}`, 'base64');
}

/** An LRU of fixed-size vectors in one Float32Array slab (no object per entry beyond its key). */
export class MemoryTier {
  readonly stats = tierStats();
  private readonly slab: Float32Array;
  private readonly slots = new Map<string, number>();
  private readonly keys: (string | undefined)[];
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private head = -1;
  private tail = -1;
  private used = 0;

  constructor(
    readonly dims: number,
    readonly capacity: number,
  ) {
    this.slab = new Float32Array(dims * capacity);
    this.keys = new Array<string | undefined>(capacity);
    this.prev = new Int32Array(capacity).fill(-1);
    this.next = new Int32Array(capacity).fill(-1);
    this.stats.bytes = this.slab.byteLength;
  }

  private unlink(slot: number): void {
    const p = this.prev[slot] ?? -1;
    const n = this.next[slot] ?? -1;
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
  }

  private pushFront(slot: number): void {
    this.prev[slot] = -1;
    this.next[slot] = this.head;
    if (this.head >= 0) this.prev[this.head] = slot;
    this.head = slot;
    if (this.tail < 0) this.tail = slot;
  }

  /** A copy of the vector under key, or undefined. */
  get(key: string): Float32Array | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    if (slot !== this.head) {
      this.unlink(slot);
      this.pushFront(slot);
    }
    return this.slab.slice(slot * this.dims, (slot + 1) * this.dims);
  }

  put(key: string, vector: Float32Array): void {
    if (vector.length !== this.dims)
      throw new Error(`vector of ${vector.length} dims in a ${this.dims}-d cache`);
    let slot = this.slots.get(key);
    if (slot !== undefined) {
      this.unlink(slot);
    } else if (this.used < this.capacity) {
      slot = this.used++;
    } else {
      slot = this.tail;
      this.unlink(slot);
      const old = this.keys[slot];
      if (old !== undefined) this.slots.delete(old);
      this.stats.evictions++;
    }
    this.keys[slot] = key;
    this.slots.set(key, slot);
    this.slab.set(vector, slot * this.dims);
    this.pushFront(slot);
    this.stats.entries = this.slots.size;
  }
}

const MAGIC = Buffer.from('OPDBVEC1');

interface Row {
  id: number;
  model: string;
  dims: number;
  offset: number;
  crc: number;
}

/**
 * The persistent tier: `index.sqlite` maps a key to (model, dims, offset, crc32) and `vectors.bin`
 * holds the float32 vectors back to back after an 8-byte magic, only ever appended to. Past
 * maxBytes the least recently used entries are dropped and the live ones copied into a fresh file.
 * Every vector is checked against its CRC when read and when the cache opens; a damaged or short
 * file is rebuilt from what still checks out, and `onMessage` says so.
 */
export class PersistentTier {
  readonly stats = tierStats();
  lastRebuild: string | null = null;
  private readonly db: Database.Database;
  private fd: number;
  private end: number;
  private readonly vectorPath: string;
  private readonly select: Database.Statement<[string], Row>;
  private readonly insert: Database.Statement<[string, string, number, number, number, number, string]>;
  private readonly touch: Database.Statement<[number, number]>;
  private pendingTouches = new Map<number, number>();
  private clock: number;

  constructor(
    readonly dir: string,
    readonly maxBytes: number,
    private readonly onMessage: (message: string) => void,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.vectorPath = join(dir, 'vectors.bin');
    this.db = new Database(join(dir, 'index.sqlite'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS vectors (
      id INTEGER PRIMARY KEY,
      key TEXT NOT NULL UNIQUE,
      model TEXT NOT NULL,
      dims INTEGER NOT NULL,
      offset INTEGER NOT NULL,
      crc INTEGER NOT NULL,
      used INTEGER NOT NULL,
      text TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS vectors_used ON vectors(used);
    CREATE INDEX IF NOT EXISTS vectors_model ON vectors(model)`);
    this.select = this.db.prepare('SELECT id, model, dims, offset, crc FROM vectors WHERE key = ?');
    this.insert = this.db.prepare(
      'INSERT OR REPLACE INTO vectors (key, model, dims, offset, crc, used, text) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.touch = this.db.prepare('UPDATE vectors SET used = ? WHERE id = ?');
    this.clock = (this.db.prepare('SELECT max(used) AS m FROM vectors').get() as { m: number | null }).m ?? 0;
    if (!existsSync(this.vectorPath)) {
      const fd = openSync(this.vectorPath, 'w', 0o600);
      writeSync(fd, MAGIC);
      closeSync(fd);
    }
    this.fd = openSync(this.vectorPath, 'r+');
    this.end = fstatSync(this.fd).size;
    this.verifyAll();
    this.refreshCounts();
  }

  private refreshCounts(): void {
    const r = this.db.prepare('SELECT count(*) AS n, coalesce(sum(dims), 0) * 4 AS b FROM vectors').get() as {
      n: number;
      b: number;
    };
    this.stats.entries = r.n;
    this.stats.bytes = r.b;
  }

  private readAt(offset: number, dims: number): Float32Array | undefined {
    const bytes = dims * 4;
    if (offset < MAGIC.length || offset + bytes > this.end) return undefined;
    const v = new Float32Array(dims);
    if (readSync(this.fd, new Uint8Array(v.buffer), 0, bytes, offset) !== bytes) return undefined;
    return v;
  }

  /** Checks the magic and every vector's CRC; rebuilds the file when anything is wrong. */
  private verifyAll(): void {
    const head = Buffer.alloc(MAGIC.length);
    const headOk =
      this.end >= MAGIC.length &&
      readSync(this.fd, head, 0, MAGIC.length, 0) === MAGIC.length &&
      head.equals(MAGIC);
    const rows = this.db.prepare('SELECT id, model, dims, offset, crc FROM vectors').all() as Row[];
    const bad: string[] = [];
    let short = 0;
    let corrupt = 0;
    for (const row of rows) {
      const v = headOk ? this.readAt(row.offset, row.dims) : undefined;
      if (v === undefined) short++;
      else if (crc32(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) !== row.crc) corrupt++;
      else continue;
      bad.push(String(row.id));
    }
    if (headOk && bad.length === 0) return;
    const why = !headOk
      ? `its header is not an ${MAGIC.toString()} vector file`
      : [
          short > 0 ? `it is truncated (${this.end} bytes; ${short} vectors lie past its end)` : '',
          corrupt > 0 ? `${corrupt} vectors fail their CRC` : '',
        ]
          .filter((s) => s !== '')
          .join(' and ');
    this.rebuild(headOk ? bad : rows.map((r) => String(r.id)), `${this.vectorPath}: ${why}`);
  }

  /** Drops the rows named and copies the rest into a fresh file. */
  private rebuild(dropIds: string[], why: string): void {
    const drop = this.db.prepare('DELETE FROM vectors WHERE id = ?');
    this.db.transaction(() => {
      for (const id of dropIds) drop.run(Number(id));
    })();
    const kept = this.compact();
    this.lastRebuild = `${why}: rebuilt, ${kept} vectors kept, ${dropIds.length} dropped (they are computed again when asked for)`;
    this.onMessage(`embedding cache: ${this.lastRebuild}`);
  }

  /** Copies live vectors (newest first, within maxBytes·0.75 when evicting) into a new file. */
  private compact(): number {
    const rows = this.db
      .prepare('SELECT id, dims, offset, crc FROM vectors ORDER BY used DESC')
      .all() as Row[];
    const tmp = `${this.vectorPath}.new`;
    const out = openSync(tmp, 'w', 0o600);
    let at = 0;
    const move = this.db.prepare('UPDATE vectors SET offset = ? WHERE id = ?');
    const drop = this.db.prepare('DELETE FROM vectors WHERE id = ?');
    const budget = Math.floor(this.maxBytes * 0.75);
    let kept = 0;
    try {
      at += writeSync(out, MAGIC, 0, MAGIC.length, 0);
      this.db.transaction(() => {
        for (const row of rows) {
          const v = this.readAt(row.offset, row.dims);
          const bytes = row.dims * 4;
          if (v === undefined || at + bytes > budget) {
            drop.run(row.id);
            if (v !== undefined) this.stats.evictions++;
            continue;
          }
          writeSync(out, new Uint8Array(v.buffer, v.byteOffset, bytes), 0, bytes, at);
          move.run(at, row.id);
          at += bytes;
          kept++;
        }
      })();
    } finally {
      closeSync(out);
    }
    closeSync(this.fd);
    renameSync(tmp, this.vectorPath);
    this.fd = openSync(this.vectorPath, 'r+');
    this.end = at;
    this.refreshCounts();
    return kept;
  }

  /** The vector of key under model, or undefined (a miss). Never another model's. */
  get(key: string, modelId: string): Float32Array | undefined {
    const row = this.select.get(key);
    if (row === undefined || row.model !== modelId) return undefined;
    const v = this.readAt(row.offset, row.dims);
    if (v === undefined || crc32(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) !== row.crc) {
      // damaged since the cache opened: check every vector again, keep those that still check out
      this.end = fstatSync(this.fd).size;
      this.verifyAll();
      return undefined;
    }
    this.pendingTouches.set(row.id, ++this.clock);
    if (this.pendingTouches.size >= 256) this.flushTouches();
    return v;
  }

  /** Writes recency updates (batched: a hit does not pay for a SQLite write). */
  flushTouches(): void {
    if (this.pendingTouches.size === 0) return;
    const pending = this.pendingTouches;
    this.pendingTouches = new Map();
    this.db.transaction(() => {
      for (const [id, used] of pending) this.touch.run(used, id);
    })();
  }

  /** Stores vectors (one transaction for all), evicting when the file passes maxBytes. */
  putMany(entries: readonly { key: string; text: string; vector: Float32Array }[], modelId: string): void {
    if (entries.length === 0) return;
    this.db.transaction(() => {
      for (const { key, text, vector } of entries) {
        const bytes = new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength);
        const offset = this.end;
        writeSync(this.fd, bytes, 0, bytes.length, offset);
        this.end += bytes.length;
        this.insert.run(key, modelId, vector.length, offset, crc32(bytes), ++this.clock, text);
      }
    })();
    this.refreshCounts();
    if (this.end > this.maxBytes) {
      this.flushTouches();
      this.compact();
    }
  }

  /** Texts cached under a model other than keep, newest first (what a model change re-embeds). */
  textsNotOf(keep: string, limit: number): string[] {
    const rows = this.db
      .prepare('SELECT DISTINCT text FROM vectors WHERE model <> ? ORDER BY used DESC LIMIT ?')
      .all(keep, limit) as { text: string }[];
    return rows.map((r) => r.text);
  }

  close(): void {
    this.flushTouches();
    closeSync(this.fd);
    this.db.close();
  }

  /** Removes the tier's files (the cache is derived data). */
  static remove(dir: string): void {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface CacheOptions {
  /** Directory of the persistent tier (the data dir's cache/ part). */
  dir: string;
  /** Vectors held in memory. */
  memoryEntries?: number;
  /** Bound of the vector file. */
  persistentBytes?: number;
  onMessage?: (message: string) => void;
}

/** Both tiers for one model at a time; `useModel` switches (memory starts empty, disk is shared). */
export class EmbeddingCache {
  private memory: MemoryTier;
  readonly persistent: PersistentTier;
  private memoryTotals = { hits: 0, misses: 0, evictions: 0 };

  constructor(
    private modelInfo: ModelInfo,
    private readonly options: CacheOptions,
  ) {
    this.memory = new MemoryTier(modelInfo.dims, options.memoryEntries ?? 20_000);
    this.persistent = new PersistentTier(
      options.dir,
      options.persistentBytes ?? 256 * 1024 * 1024,
      options.onMessage ?? (() => undefined),
    );
  }

  get model(): ModelInfo {
    return this.modelInfo;
  }

  /** From now on entries are keyed (and checked) by this model; the memory tier starts empty. */
  useModel(model: ModelInfo): void {
    const m = this.memory.stats;
    this.memoryTotals = {
      hits: this.memoryTotals.hits + m.hits,
      misses: this.memoryTotals.misses + m.misses,
      evictions: this.memoryTotals.evictions + m.evictions,
    };
    this.modelInfo = model;
    this.memory = new MemoryTier(model.dims, this.options.memoryEntries ?? 20_000);
  }

  /** The cached vector of a text under the current model, or undefined. */
  get(text: string): Float32Array | undefined {
    const t0 = performance.now();
    const key = cacheKey(this.modelInfo.id, text);
    const m = this.memory.get(key);
    const ms = this.memory.stats;
    if (m !== undefined) {
      ms.hits++;
      record(ms, t0);
      return m;
    }
    ms.misses++;
    record(ms, t0);
    const t1 = performance.now();
    const p = this.persistent.get(key, this.modelInfo.id);
    const ps = this.persistent.stats;
    if (p === undefined) {
      ps.misses++;
      record(ps, t1);
      return undefined;
    }
    ps.hits++;
    this.memory.put(key, p);
    record(ps, t1);
    return p.slice();
  }

  /** Stores vectors of texts computed with the current model in both tiers. */
  putMany(texts: readonly string[], vectors: readonly Float32Array[]): void {
    const entries = texts.map((text, i) => {
      const vector = vectors[i];
      if (vector === undefined) throw new Error('one vector per text');
      const key = cacheKey(this.modelInfo.id, text);
      this.memory.put(key, vector);
      return { key, text: normaliseText(text), vector };
    });
    this.persistent.putMany(entries, this.modelInfo.id);
  }

  stats(): CacheStats {
    const m = this.memory.stats;
    return {
      model: this.modelInfo.id,
      memory: {
        ...m,
        hits: m.hits + this.memoryTotals.hits,
        misses: m.misses + this.memoryTotals.misses,
        evictions: m.evictions + this.memoryTotals.evictions,
      },
      persistent: { ...this.persistent.stats },
      lastRebuild: this.persistent.lastRebuild,
    };
  }

  close(): void {
    this.persistent.close();
  }
}

/**
 * An Embedder that answers from the cache and embeds only the misses (each distinct text once),
 * through the embedder it wraps. Its model is the wrapped one's; the cache must be on that model.
 */
export function cachedEmbedder(inner: Embedder, cache: EmbeddingCache): Embedder {
  if (cache.model.id !== inner.model.id) cache.useModel(inner.model);
  /**
   * Texts being computed now, by normalised text: a second caller asking for one (the search's backfill and
   * a re-embedding meet on the same summaries) waits for that vector instead of computing it again.
   */
  const inFlight = new Map<string, Promise<Float32Array | undefined>>();
  return {
    model: inner.model,
    async embed(texts, options) {
      // the cache moved on to another model (`model use`): this embedder's texts neither read nor write it
      const ours = (): boolean => cache.model.id === inner.model.id;
      const out: (Float32Array | undefined)[] = texts.map((t) => (ours() ? cache.get(t) : undefined));
      const wanted = [...new Set(texts.filter((_, i) => out[i] === undefined).map(normaliseText))];
      const waits = new Map<string, Promise<Float32Array | undefined>>();
      const missing: string[] = [];
      for (const t of wanted) {
        const pending = inFlight.get(t);
        if (pending !== undefined) waits.set(t, pending);
        else missing.push(t);
      }
      if (missing.length > 0) {
        const computing = inner.embed(missing, options);
        missing.forEach((t, i) => {
          const one = computing.then(
            (vectors) => vectors[i],
            () => undefined,
          );
          inFlight.set(t, one);
          waits.set(t, one);
        });
        try {
          const vectors = await computing;
          if (ours()) cache.putMany(missing, vectors);
        } finally {
          for (const t of missing) inFlight.delete(t);
        }
      }
      const byText = new Map<string, Float32Array | undefined>();
      for (const [t, p] of waits) byText.set(t, await p);
      texts.forEach((t, i) => {
        if (out[i] === undefined) out[i] = byText.get(normaliseText(t))?.slice();
      });
      return out.map((v) => {
        // a text another caller was computing, and that computation failed: this call fails as well
        if (v === undefined) throw new Error('the embedder returned no vector for a text (its batch failed)');
        return v;
      });
    },
    close: () => inner.close(),
  };
}
