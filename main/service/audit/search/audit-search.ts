import { OpError } from '../../../common/contract/errors.js';
import type {
  AuditListEntry,
  AuditSearchRequest,
  AuditSearchResponse,
} from '../../../common/contract/payloads.js';
import type { Embedder } from '../../embed/embedder.js';
import { errorText } from '../entry.js';
import { SearchIndex, type ChainReader, type IndexStatus } from './search-index.js';

/**
 * Entries embedded per batch. The model runs in the embedder process, so a batch costs the core's loop only
 * its IPC and one SQLite transaction; one batch at a time keeps the process's queue (and a query's wait
 * behind it) short.
 */
const EMBED_BATCH = 32;
const DEFAULT_LIMIT = 10;

/** The chain as search reads it: pages of leaves and its size. */
export interface SearchedChain extends ChainReader {
  head(): { size: number };
}

/**
 * Search over the audit log in the core: keeps the index beside the chain up to date (text rows at once,
 * vectors in the background, in batches, through the embedder) and answers AuditSearch. The chain is the
 * source of truth: after a crash the index catches up from it, and what has no vector is simply queued.
 */
export class AuditSearch {
  private embedder: Embedder | undefined;
  private pumping: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Resolves when the queue is empty (tests, `waitIdle`). */
  private idleWaiters: (() => void)[] = [];
  /** The index's counts as of the last batch (Stats reads this; counting the file each time is not free). */
  private lastStatus: IndexStatus | undefined;
  private batchesSinceCount = 0;

  constructor(
    readonly index: SearchIndex,
    private readonly chain: SearchedChain,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  /** The embedder whose model is searched (undefined: lexical search only until one is given). */
  get activeEmbedder(): Embedder | undefined {
    return this.embedder;
  }

  /**
   * Searches with this embedder from now on: its model becomes the index's active one and every entry
   * without a vector of that model is queued (a model change re-embeds the whole log, never touching it).
   */
  useEmbedder(embedder: Embedder): void {
    if (this.stopped) return;
    const before = this.index.model?.id;
    this.embedder = embedder;
    this.index.useModel(embedder.model);
    this.lastStatus = this.index.status();
    if (before !== undefined && before !== embedder.model.id) {
      this.log(
        `audit search: model ${embedder.model.name} (${embedder.model.id.slice(0, 12)}) replaces ${before.slice(0, 12)}; re-embedding`,
      );
    }
    this.notify();
  }

  /** New entries were appended (or the core started): index them and embed what is queued, in the background. */
  notify(): void {
    if (this.stopped) return;
    if (this.pumping !== undefined) {
      this.again = true;
      return;
    }
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      if (this.again && !this.stopped) {
        this.again = false;
        this.notify();
      } else this.settleIdle();
    });
  }

  /** Where the index stands under its model (as of the last batch embedded), for `model info` and Stats. */
  progress(): { model: string | null; entries: number; vectors: number; queued: number } | undefined {
    const s = this.lastStatus;
    return s === undefined
      ? undefined
      : { model: s.model, entries: s.entries, vectors: s.vectors, queued: s.queued };
  }

  /** Resolves once every entry the chain holds now is indexed and embedded (or the embedder failed). */
  waitIdle(): Promise<void> {
    if (this.pumping === undefined && !this.again) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private settleIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async pump(): Promise<void> {
    try {
      this.index.catchUp(this.chain);
      for (;;) {
        const embedder = this.embedder;
        if (this.stopped || embedder === undefined) return;
        const batch = this.index.queued(EMBED_BATCH);
        if (batch.length === 0) {
          this.lastStatus = this.index.status();
          return;
        }
        const vectors = await embedder.embed(batch.map((b) => b.text));
        if (this.stopped) return;
        const stored = this.index.putVectors(
          embedder.model.id,
          batch.map((b, i) => ({ seq: b.seq, vec: vectors[i] as Float32Array })),
        );
        // counted from the file every 32 batches; in between the counts move by what was stored (counting
        // 10,000 rows after every batch showed as tens of ms of the core's loop in the backfill bench)
        const last = this.lastStatus;
        if (last === undefined || ++this.batchesSinceCount >= 32) {
          this.lastStatus = this.index.status();
          this.batchesSinceCount = 0;
        } else {
          this.lastStatus = {
            ...last,
            vectors: last.vectors + stored,
            queued: Math.max(0, last.queued - stored),
          };
        }
        // let the core's other work run between batches
        await new Promise((r) => setImmediate(r));
        if (this.again && this.index.catchUp(this.chain) > 0) this.batchesSinceCount = 32;
      }
    } catch (e) {
      this.log(`audit search: indexing stopped: ${errorText(e)} (queued entries stay queued)`);
    }
  }

  /** AuditSearch: the fused top results, each with its entry and the command that proves it. */
  async search(req: AuditSearchRequest): Promise<AuditSearchResponse> {
    this.index.catchUp(this.chain);
    const embedder = this.embedder;
    const mode = req.mode ?? 'hybrid';
    let queryVec: Float32Array | undefined;
    if (mode !== 'lexical' && embedder !== undefined) {
      // ahead of the backfill's batches in the embedder's queue: a query waits at most for the batch in flight
      [queryVec] = await embedder.embed([req.query], { urgent: true });
      // the model changed meanwhile: this query's vector is of the old one and is never scored with the new
      if (this.embedder !== embedder) queryVec = undefined;
    }
    const found = this.index.search(
      req.query,
      queryVec,
      {
        since: req.since === undefined ? undefined : isoTime(req.since, 'since'),
        until: req.until === undefined ? undefined : isoTime(req.until, 'until'),
        kind: req.kind,
        plugin: req.plugin,
        actor: req.actor,
      },
      req.limit ?? DEFAULT_LIMIT,
      mode,
    );
    const results = found.results.flatMap((r) => {
      const entry: AuditListEntry | undefined = SearchIndex.entryOf(this.chain, r.seq);
      if (entry === undefined) return [];
      return [
        {
          seq: r.seq,
          score: round(r.score),
          parts: {
            lexical: r.lexical === null ? null : round(r.lexical),
            semantic: r.semantic === null ? null : round(r.semantic),
          },
          entry,
          prove: `op-dbus audit prove ${r.seq}`,
        },
      ];
    });
    const model = embedder?.model;
    return {
      results,
      model: model === undefined ? null : { id: model.id, name: model.name, label: model.label },
      method: found.method,
      exact: found.exact,
      queued: this.index.status().queued,
      size: this.chain.head().size,
    };
  }

  /** The index checked against the chain (stale rows indexed again), then the queue pumped. */
  verify(): IndexStatus {
    this.index.catchUp(this.chain);
    const status = this.index.verify(this.chain);
    this.lastStatus = status;
    this.notify();
    return status;
  }

  /** Stops indexing (what is queued stays queued in the file) and closes the index. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.pumping?.catch(() => undefined);
    this.settleIdle();
    this.index.close();
  }
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
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
