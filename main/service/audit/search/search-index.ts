import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { OpError } from '../../../common/contract/errors.js';
import type { AuditKind, AuditListEntry } from '../../../common/contract/payloads.js';
import { leafHashHexOfText } from '../../../common/transparency/rfc6962.js';
import { errorText, parseBody } from '../entry.js';
import { fuse, SEMANTIC_WEIGHT } from './fusion.js';
import {
  allIdentifiersMatch,
  anyWordMatch,
  containsExactly,
  contentWords,
  parseQuery,
  wordMatch,
} from './query.js';
import { VectorSet } from './vector-set.js';

const SCHEMA_VERSION = '1';
/** Candidates taken from each side before fusion. */
const CANDIDATES = 100;
/** Entries read from the chain per catch-up transaction. */
const CATCH_UP_PAGE = 2000;
/** Below this many, the entries holding a query's identifiers are scored one by one rather than filtered. */
const EXPLICIT_MAX = 5000;

const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs(
  seq INTEGER PRIMARY KEY,
  leaf TEXT NOT NULL,
  time TEXT NOT NULL,
  kind TEXT NOT NULL,
  plugin TEXT,
  actor_uid INTEGER,
  text TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(
  text, content='docs', content_rowid='seq', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS models(id TEXT PRIMARY KEY, name TEXT NOT NULL, label TEXT NOT NULL, dims INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vectors(
  seq INTEGER NOT NULL,
  model TEXT NOT NULL,
  vec BLOB NOT NULL,
  PRIMARY KEY(seq, model)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS docs_kind ON docs(kind, seq);
CREATE INDEX IF NOT EXISTS docs_plugin ON docs(plugin, seq);
CREATE INDEX IF NOT EXISTS docs_time ON docs(time);
`;

/** What the index reads of the chain: pages of entries as their exact leaf bytes (AuditLog.exportLeaves). */
export interface ChainReader {
  exportLeaves(fromSeq: number, limit: number): { seq: number; body: string }[];
}

/** The model whose vectors the index keeps and searches (an embedder's ModelInfo has these fields). */
export interface IndexModel {
  id: string;
  name: string;
  label: string;
  dims: number;
}

/** The filters of a search, as AuditSearchRequest has them (times already ISO 8601 UTC). */
export interface SearchFilters {
  since?: string | undefined;
  until?: string | undefined;
  kind?: AuditKind | undefined;
  plugin?: string | undefined;
  actor?: number | undefined;
}

/** One result before its entry is read: the fused score and its parts. */
export interface ScoredSeq {
  seq: number;
  score: number;
  lexical: number | null;
  semantic: number | null;
}

/** How the index stands against the chain. */
export interface IndexStatus {
  model: string | null;
  /** Entries in the chain the index has read (its last seq + 1). */
  entries: number;
  /** Rows of text the index holds. */
  indexed: number;
  /** Entries with a vector under the active model. */
  vectors: number;
  /** Entries waiting for one. */
  queued: number;
  /** Rows found to disagree with the chain (and indexed again from it) by the last verify. */
  stale: number;
}

type DocRow = { seq: number; leaf: string; text: string };

/**
 * The audit log's search index (DESIGN.md section 6): the summaries' full text (FTS5, BM25) and each
 * entry's vector per model, keyed by (seq, model id), in a database file of its own beside the chain.
 * Nothing here is part of a leaf hash: re-embedding never rewrites history, and a lost or damaged index is
 * rebuilt from the log. Every row names the leaf it was made from, so verify tells a stale row from a
 * missing vector.
 */
export class SearchIndex {
  private readonly stmts: ReturnType<typeof prepare>;
  private active: IndexModel | undefined;
  private vectors: VectorSet | undefined;
  /** Every doc with seq ≤ this has a vector under the active model (the queue's cursor). */
  private embeddedThrough = -1;
  private stale = 0;

  private constructor(
    private readonly db: Database.Database,
    /** Why the store was rebuilt when opened (missing, damaged, another version), if it was. */
    readonly rebuilt: string | undefined,
  ) {
    this.stmts = prepare(db);
  }

  /**
   * Opens the index at `file`, creating it if missing. A file SQLite calls damaged, or of another schema, is
   * removed and begun again: everything in it comes from the log.
   */
  static open(file: string): SearchIndex {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const existed = existsSync(file);
    let why: string | undefined = existed ? undefined : 'no search index yet';
    try {
      return new SearchIndex(openDb(file), why);
    } catch (e) {
      why = `the search index was unreadable (${errorText(e)})`;
    }
    for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
    return new SearchIndex(openDb(file), why);
  }

  /** The model whose vectors are searched, if one is set. */
  get model(): IndexModel | undefined {
    return this.active;
  }

  /**
   * Makes this model the one searched: its vectors (kept from an earlier use, if any) are loaded, entries
   * without one are queued, and no other model's vector is ever scored with it.
   */
  useModel(model: IndexModel): void {
    this.stmts.putModel.run(model.id, model.name, model.label, model.dims);
    this.stmts.setMeta.run('active_model', model.id);
    this.active = model;
    const set = new VectorSet(model.dims, Math.max(1024, this.stmts.countVectors.get(model.id) ?? 0));
    const damaged: number[] = [];
    for (const row of this.stmts.vectorsOf.iterate(model.id)) {
      const vec = vectorOf(row.vec, model.dims);
      if (vec === undefined) damaged.push(row.seq);
      else set.add(row.seq, vec);
    }
    // a damaged vector is dropped, so its entry is queued again
    for (const seq of damaged) this.stmts.deleteVector.run(seq, model.id);
    this.vectors = set;
    this.embeddedThrough = -1;
  }

  /** The model id recorded as active in the file (what the core used last), if any. */
  get recordedModel(): string | undefined {
    return this.stmts.getMeta.get('active_model');
  }

  /**
   * Reads the chain's entries after the last one indexed into text rows (one transaction per page). When the
   * index's last row does not name the chain's leaf at its seq, the index belongs to another history: it is
   * emptied and read again from entry 0. Returns how many entries were added.
   */
  catchUp(chain: ChainReader, max = Number.MAX_SAFE_INTEGER): number {
    const last = this.stmts.lastDoc.get();
    if (last !== undefined) {
      const [row] = chain.exportLeaves(last.seq, 1);
      if (row?.seq !== last.seq || leafHashHexOfText(row.body) !== last.leaf) this.clear();
    }
    let from = (this.stmts.lastDoc.get()?.seq ?? -1) + 1;
    let added = 0;
    while (added < max) {
      const page = chain.exportLeaves(from, Math.min(CATCH_UP_PAGE, max - added));
      if (page.length === 0) break;
      this.db.transaction(() => {
        for (const { seq, body } of page) this.indexRow(seq, body);
      })();
      added += page.length;
      from = (page[page.length - 1]?.seq ?? from) + 1;
    }
    return added;
  }

  /** Entries without a vector under the active model, oldest first: what the embedder does next. */
  queued(limit: number): { seq: number; text: string }[] {
    const model = this.active;
    if (model === undefined) return [];
    const rows = this.stmts.missing.all(this.embeddedThrough, model.id, limit);
    if (rows.length === 0) this.embeddedThrough = this.stmts.lastDoc.get()?.seq ?? -1;
    else if (rows[0] !== undefined) this.embeddedThrough = rows[0].seq - 1;
    return rows;
  }

  /**
   * Stores vectors made by `modelId` (one transaction; a vector already stored for (seq, model) is replaced,
   * so no entry ever has two). Vectors of a model that is no longer active are dropped.
   */
  putVectors(modelId: string, rows: readonly { seq: number; vec: Float32Array }[]): number {
    const model = this.active;
    if (model?.id !== modelId) return 0;
    let stored = 0;
    this.db.transaction(() => {
      for (const { seq, vec } of rows) {
        if (vec.length !== model.dims) {
          throw new OpError('Internal', `embedder ${model.name} gave ${vec.length} dims, not ${model.dims}`);
        }
        // only for text still indexed (a concurrent rebuild may have removed the row)
        if (this.stmts.docAt.get(seq) === undefined) continue;
        this.stmts.putVector.run(seq, modelId, Buffer.from(vec.buffer, vec.byteOffset, vec.byteLength));
        stored += 1;
      }
    })();
    for (const { seq, vec } of rows) if (this.stmts.docAt.get(seq) !== undefined) this.vectors?.add(seq, vec);
    return stored;
  }

  /** Where the index stands (counts from the file, not from memory). */
  status(): IndexStatus {
    const model = this.active?.id ?? null;
    const indexed = this.stmts.countDocs.get() ?? 0;
    const vectors = model === null ? 0 : (this.stmts.countVectorsOfDocs.get(model) ?? 0);
    return {
      model,
      entries: (this.stmts.lastDoc.get()?.seq ?? -1) + 1,
      indexed,
      vectors,
      queued: model === null ? 0 : indexed - vectors,
      stale: this.stale,
    };
  }

  /**
   * Checks every row against the chain (each names the leaf it was made from, and holds that entry's
   * summary): a row that disagrees is indexed again from the chain and its vectors dropped (so queued);
   * vectors whose bytes are not a vector of their model are dropped too. The chain itself is the log's
   * verify's business: a missing or stale row here never makes an entry bad.
   */
  verify(chain: ChainReader): IndexStatus {
    let stale = 0;
    let from = 0;
    for (;;) {
      const page = chain.exportLeaves(from, CATCH_UP_PAGE);
      if (page.length === 0) break;
      this.db.transaction(() => {
        for (const { seq, body } of page) {
          const row = this.stmts.docAt.get(seq);
          if (row === undefined) continue; // not read yet: catchUp adds it
          if (row.leaf !== leafHashHexOfText(body) || row.text !== summaryOf(body)) {
            this.removeRow(row);
            this.indexRow(seq, body);
            stale += 1;
          }
        }
      })();
      from = (page[page.length - 1]?.seq ?? from) + 1;
    }
    // rows past the chain's end (a log replaced by a shorter one)
    for (const row of this.stmts.docsFrom.all(from)) {
      this.removeRow(row);
      stale += 1;
    }
    const model = this.active;
    if (model !== undefined) {
      // reloading drops vectors whose bytes are not a vector of this model (and so queues their entries)
      this.useModel(model);
    }
    this.stale = stale;
    this.embeddedThrough = -1;
    return this.status();
  }

  /**
   * Hybrid search: BM25 over the summaries and cosine similarity under the active model, fused (see
   * fusion.ts). Identifiers of the query are matched exactly: every result contains each of them as a
   * whole token. `query` is the embedded query text (undefined: no semantic side).
   */
  search(
    text: string,
    queryVec: Float32Array | undefined,
    filters: SearchFilters,
    limit: number,
    mode: 'hybrid' | 'lexical' | 'semantic' = 'hybrid',
    weight = SEMANTIC_WEIGHT,
  ): { results: ScoredSeq[]; method: 'exact' | 'ann' | 'none'; exact: string[] } {
    const q = parseQuery(text);
    const { where, params } = filterSql(filters);
    // entries that hold every identifier exactly: the only ones a result may be
    let holders: number[] | undefined;
    if (q.identifiers.length > 0) {
      holders = this.db
        .prepare<unknown[], { seq: number; text: string }>(
          `SELECT d.seq AS seq, d.text AS text FROM docs_fts JOIN docs d ON d.seq = docs_fts.rowid WHERE docs_fts MATCH ?${where}`,
        )
        .all(allIdentifiersMatch(q.identifiers), ...params)
        .filter((r) => q.identifiers.every((id) => containsExactly(r.text, id)))
        .map((r) => r.seq);
      if (holders.length === 0) return { results: [], method: 'none', exact: q.identifiers };
    }
    const holderSet = holders === undefined ? undefined : new Set(holders);
    const lexical = new Map<number, number>();
    if (mode !== 'semantic' && q.words.length > 0) {
      const match =
        q.identifiers.length > 0
          ? `(${allIdentifiersMatch(q.identifiers)}) AND (${anyWordMatch(q.words)})`
          : anyWordMatch(q.words);
      const rows = this.db
        .prepare<unknown[], { seq: number; s: number }>(
          `SELECT d.seq AS seq, -bm25(docs_fts) AS s FROM docs_fts JOIN docs d ON d.seq = docs_fts.rowid WHERE docs_fts MATCH ?${where} ORDER BY bm25(docs_fts) LIMIT ?`,
        )
        .all(match, ...params, holderSet === undefined ? CANDIDATES : CANDIDATES + holderSet.size);
      let best = 0;
      for (const r of rows) {
        if (holderSet !== undefined && !holderSet.has(r.seq)) continue;
        if (lexical.size >= CANDIDATES) break;
        lexical.set(r.seq, r.s);
        best = Math.max(best, r.s);
      }
      // BM25 relative to the best of this answer, times the share of the query's words the entry has: one
      // word in common out of five is weak evidence however rare that word is
      const coverage = this.coverage(contentWords(q.words), [...lexical.keys()]);
      for (const [seq, s] of lexical) lexical.set(seq, best > 0 ? (s / best) * (coverage.get(seq) ?? 0) : 0);
    }
    let method: 'exact' | 'ann' | 'none' = 'none';
    const semantic = new Map<number, number>();
    const vectors = this.vectors;
    if (mode !== 'lexical' && queryVec !== undefined && vectors !== undefined && vectors.size > 0) {
      let allowed: { seqs: readonly number[] } | { test: (seq: number) => boolean } | undefined;
      if (holders !== undefined && holders.length <= EXPLICIT_MAX) allowed = { seqs: holders };
      else if (holderSet !== undefined) allowed = { test: (s) => holderSet.has(s) };
      else if (where !== '') {
        const inFilter = new Set(
          this.db
            .prepare<unknown[], number>(`SELECT seq FROM docs d WHERE 1${where}`)
            .pluck()
            .all(...params),
        );
        allowed = inFilter.size <= EXPLICIT_MAX ? { seqs: [...inFilter] } : { test: (s) => inFilter.has(s) };
      }
      const found = vectors.topK(queryVec, CANDIDATES, allowed);
      method = found.method;
      for (const h of found.hits) semantic.set(h.seq, h.score);
    }
    const candidates = new Set<number>(
      mode === 'lexical'
        ? lexical.keys()
        : mode === 'semantic'
          ? semantic.keys()
          : [...lexical.keys(), ...semantic.keys()],
    );
    // cosines of one answer lie close together (0.2-0.6 for USE-lite): spread them over 0..1 between the
    // semantic candidates' lowest and highest, as BM25 is scaled by its best
    let lo = Infinity;
    let hi = -Infinity;
    for (const c of semantic.values()) {
      lo = Math.min(lo, c);
      hi = Math.max(hi, c);
    }
    const spread = (c: number | null): number | null =>
      c === null ? null : hi > lo ? Math.max(0, (c - lo) / (hi - lo)) : 1;
    const results: ScoredSeq[] = [];
    for (const seq of candidates) {
      const lex = lexical.get(seq) ?? null;
      const sem =
        semantic.get(seq) ??
        (queryVec !== undefined && mode !== 'lexical' ? (vectors?.scoreOf(seq, queryVec) ?? null) : null);
      const score =
        mode === 'lexical' ? (lex ?? 0) : mode === 'semantic' ? (sem ?? 0) : fuse(lex, spread(sem), weight);
      results.push({ seq, score, lexical: lex, semantic: sem });
    }
    results.sort((a, b) => b.score - a.score || b.seq - a.seq);
    return { results: results.slice(0, limit), method, exact: q.identifiers };
  }

  /** For each candidate, the share of `words` its text matches (FTS5's tokens and stems, like BM25's). */
  private coverage(words: readonly string[], seqs: readonly number[]): Map<number, number> {
    const hits = new Map<number, number>();
    if (seqs.length === 0 || words.length === 0) return hits;
    const ids = JSON.stringify(seqs);
    for (const w of words) {
      for (const seq of this.stmts.matchAmong.all(wordMatch(w), ids)) hits.set(seq, (hits.get(seq) ?? 0) + 1);
    }
    for (const [seq, n] of hits) hits.set(seq, n / words.length);
    return hits;
  }

  /** The entry with its leaf, read from the chain (the index keeps no copy of an entry). */
  static entryOf(chain: ChainReader, seq: number): AuditListEntry | undefined {
    const [row] = chain.exportLeaves(seq, 1);
    if (row?.seq !== seq) return undefined;
    const entry = parseBody(row.body);
    if (typeof entry === 'string') return undefined;
    return { ...entry, leaf: leafHashHexOfText(row.body) };
  }

  /** For tests and the bench: the vectors held in memory for the active model. */
  get vectorSet(): VectorSet | undefined {
    return this.vectors;
  }

  close(): void {
    this.db.close();
  }

  /** Adds the text row of one entry (its body as the chain has it); a body that is no entry is left out. */
  private indexRow(seq: number, body: string): void {
    const entry = parseBody(body);
    if (typeof entry === 'string') return; // the log's verify names it; the index only reads good entries
    const leaf = leafHashHexOfText(body);
    this.stmts.insertDoc.run(seq, leaf, entry.time, entry.kind, entry.plugin, entry.actor.uid, entry.summary);
    this.stmts.insertFts.run(seq, entry.summary);
  }

  private removeRow(row: DocRow): void {
    this.stmts.deleteFts.run(row.seq, row.text);
    this.stmts.deleteDoc.run(row.seq);
    this.stmts.deleteVectorsOf.run(row.seq);
  }

  private clear(): void {
    this.db.exec(
      "DELETE FROM vectors; DELETE FROM docs; INSERT INTO docs_fts(docs_fts) VALUES('delete-all');",
    );
    if (this.active !== undefined) this.useModel(this.active);
  }
}

/** The summary in an entry's body (what the index holds as its text). */
function summaryOf(body: string): string | undefined {
  const entry = parseBody(body);
  return typeof entry === 'string' ? undefined : entry.summary;
}

/** A stored vector blob as a Float32Array of `dims`, or undefined when it is not one (damaged). */
function vectorOf(blob: unknown, dims: number): Float32Array | undefined {
  if (!Buffer.isBuffer(blob) || blob.length !== dims * 4) return undefined;
  const vec = new Float32Array(dims);
  Buffer.from(vec.buffer).set(blob);
  for (let i = 0; i < dims; i++) if (!Number.isFinite(vec[i])) return undefined;
  return vec;
}

function openDb(file: string): Database.Database {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(`quick_check: ${String(check)}`);
    db.exec(SCHEMA_SQL);
    db.prepare("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)").run(SCHEMA_VERSION);
    const version = db
      .prepare<[], string>("SELECT value FROM meta WHERE key = 'schema_version'")
      .pluck()
      .get();
    if (version !== SCHEMA_VERSION) throw new Error(`schema version ${version ?? '(none)'}`);
    // the FTS index agrees with its rows (a damaged shadow table is caught here, not mid-search)
    db.exec("INSERT INTO docs_fts(docs_fts, rank) VALUES('integrity-check', 1)");
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

function filterSql(f: SearchFilters): { where: string; params: (string | number)[] } {
  const parts: string[] = [];
  const params: (string | number)[] = [];
  if (f.since !== undefined) {
    parts.push('d.time >= ?');
    params.push(f.since);
  }
  if (f.until !== undefined) {
    parts.push('d.time < ?');
    params.push(f.until);
  }
  if (f.kind !== undefined) {
    parts.push('d.kind = ?');
    params.push(f.kind);
  }
  if (f.plugin !== undefined) {
    parts.push('d.plugin = ?');
    params.push(f.plugin);
  }
  if (f.actor !== undefined) {
    parts.push('d.actor_uid = ?');
    params.push(f.actor);
  }
  return { where: parts.map((p) => ` AND ${p}`).join(''), params };
}

function prepare(db: Database.Database) {
  return {
    getMeta: db.prepare<[string], string>('SELECT value FROM meta WHERE key = ?').pluck(),
    setMeta: db.prepare<[string, string]>('INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)'),
    putModel: db.prepare<[string, string, string, number]>(
      'INSERT OR REPLACE INTO models(id, name, label, dims) VALUES (?, ?, ?, ?)',
    ),
    lastDoc: db.prepare<[], DocRow>('SELECT seq, leaf, text FROM docs ORDER BY seq DESC LIMIT 1'),
    docAt: db.prepare<[number], DocRow>('SELECT seq, leaf, text FROM docs WHERE seq = ?'),
    docsFrom: db.prepare<[number], DocRow>('SELECT seq, leaf, text FROM docs WHERE seq >= ?'),
    matchAmong: db
      .prepare<[string, string], number>(
        'SELECT rowid FROM docs_fts WHERE docs_fts MATCH ? AND rowid IN (SELECT value FROM json_each(?))',
      )
      .pluck(),
    countDocs: db.prepare<[], number>('SELECT count(*) FROM docs').pluck(),
    insertDoc: db.prepare<[number, string, string, string, string | null, number | null, string]>(
      'INSERT OR REPLACE INTO docs(seq, leaf, time, kind, plugin, actor_uid, text) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    insertFts: db.prepare<[number, string]>('INSERT INTO docs_fts(rowid, text) VALUES (?, ?)'),
    deleteFts: db.prepare<[number, string]>(
      "INSERT INTO docs_fts(docs_fts, rowid, text) VALUES ('delete', ?, ?)",
    ),
    deleteDoc: db.prepare<[number]>('DELETE FROM docs WHERE seq = ?'),
    missing: db.prepare<[number, string, number], { seq: number; text: string }>(
      'SELECT d.seq AS seq, d.text AS text FROM docs d WHERE d.seq > ? AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.seq = d.seq AND v.model = ?) ORDER BY d.seq LIMIT ?',
    ),
    putVector: db.prepare<[number, string, Buffer]>(
      'INSERT OR REPLACE INTO vectors(seq, model, vec) VALUES (?, ?, ?)',
    ),
    vectorsOf: db.prepare<[string], { seq: number; vec: unknown }>(
      'SELECT seq, vec FROM vectors WHERE model = ? ORDER BY seq',
    ),
    countVectors: db.prepare<[string], number>('SELECT count(*) FROM vectors WHERE model = ?').pluck(),
    countVectorsOfDocs: db
      .prepare<[string], number>(
        'SELECT count(*) FROM vectors v JOIN docs d ON d.seq = v.seq WHERE v.model = ?',
      )
      .pluck(),
    deleteVector: db.prepare<[number, string]>('DELETE FROM vectors WHERE seq = ? AND model = ?'),
    deleteVectorsOf: db.prepare<[number]>('DELETE FROM vectors WHERE seq = ?'),
  };
}
