import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import {
  EmbeddingModel,
  OpError,
  type EmbeddingSearchProgress,
  type EmbeddingStats,
  type ReembedProgress,
} from '../../common/contract/index.js';
import { cachedEmbedder, EmbeddingCache } from './cache.js';
import type { Embedder, ModelInfo } from './embedder.js';
import { EmbedderProcess, type EmbedderProcessOptions } from './embedder-process.js';
import type { ModelSpec } from './embedder-protocol.js';
import { ModelFolderError, readOnnxBertFolder } from './onnx-bert.js';
import { USE_LITE_NAME, useLiteInfo } from './use-lite.js';

/** What `models.json` remembers: the model in use and the folders a user has pointed at. */
const ModelsFile = z.object({
  current: z.string(),
  folders: z.record(z.string(), z.object({ dir: z.string(), model: EmbeddingModel })),
});
type ModelsFile = z.infer<typeof ModelsFile>;

/** Texts the core holds that should have vectors (e.g. audit summaries), for the re-embedding. */
export type TextSource = () => Iterable<string> | AsyncIterable<string>;

export interface EmbeddingServiceOptions {
  /** Where models.json and the cache's files live (the data dir's cache/ part). */
  dir: string;
  log: (line: string) => void;
  process?: EmbedderProcessOptions;
  memoryEntries?: number;
  persistentBytes?: number;
}

const REEMBED_CHUNK = 64;

/**
 * The core's embedding: the model in use (USE-lite unless a user chose a folder), its embedder
 * process (started on first need, so a core that never embeds never pays for it), the cache in
 * front of it, and the background re-embedding after `op-dbus model use`.
 */
export class EmbeddingService {
  private state: ModelsFile;
  private current: ModelInfo | undefined;
  private process: EmbedderProcess | undefined;
  private starting: Promise<Embedder> | undefined;
  private cache: EmbeddingCache | undefined;
  private cached: Embedder | undefined;
  private progress: ReembedProgress;
  private readonly sources: TextSource[] = [];
  private reembedding: Promise<void> | undefined;
  private closed = false;
  private readonly listeners: ((embedder: Embedder) => void)[] = [];
  private searchProgress: (() => EmbeddingSearchProgress | undefined) | undefined;

  constructor(private readonly o: EmbeddingServiceOptions) {
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    this.state = this.readState();
    this.progress = { model: '', state: 'idle', done: 0, total: 0 };
  }

  private get stateFile(): string {
    return join(this.o.dir, 'models.json');
  }

  private readState(): ModelsFile {
    const fallback: ModelsFile = { current: USE_LITE_NAME, folders: {} };
    if (!existsSync(this.stateFile)) return fallback;
    try {
      return ModelsFile.parse(JSON.parse(readFileSync(this.stateFile, 'utf8')));
    } catch (e) {
      this.o.log(
        `embedding: ${this.stateFile} unreadable (${e instanceof Error ? e.message : String(e)}): using ${USE_LITE_NAME}`,
      );
      return fallback;
    }
  }

  private writeState(): void {
    const tmp = `${this.stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.state, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, this.stateFile);
  }

  /** Registers texts that a model change re-embeds (besides what the cache already holds). */
  addTextSource(source: TextSource): void {
    this.sources.push(source);
  }

  /**
   * Called with the (cached) embedder of the model in use each time one is installed: when the process
   * first starts, and after every `use`. The audit search follows the model this way, so everything it
   * embeds goes through the unprivileged process and the cache.
   */
  onEmbedder(listener: (embedder: Embedder) => void): void {
    this.listeners.push(listener);
    if (this.cached !== undefined) listener(this.cached);
  }

  /** Where the audit search's index stands under the model in use (shown by `model info`, Stats). */
  setSearchProgress(source: () => EmbeddingSearchProgress | undefined): void {
    this.searchProgress = source;
  }

  /** Every model a user can `use`: USE-lite and the folders used before. */
  async list(): Promise<{ models: ModelInfo[]; current: string }> {
    const models: ModelInfo[] = [await useLiteInfo()];
    for (const f of Object.values(this.state.folders)) models.push(f.model);
    return { models, current: this.state.current };
  }

  private specFor(nameOrDir: string): { spec: ModelSpec; name: string; dir?: string } {
    if (nameOrDir === USE_LITE_NAME) return { spec: { kind: 'use-lite' }, name: USE_LITE_NAME };
    const known = this.state.folders[nameOrDir];
    const dir =
      known?.dir ?? (isAbsolute(nameOrDir) || nameOrDir.includes('/') ? resolve(nameOrDir) : undefined);
    if (dir === undefined) {
      const names = [USE_LITE_NAME, ...Object.keys(this.state.folders)].join(', ');
      throw new OpError(
        'InvalidArgument',
        `no model named "${nameOrDir}" (known: ${names}); give a model folder's path to add one`,
      );
    }
    try {
      const bytes = readOnnxBertFolder(dir);
      return { spec: { kind: 'onnx-bert', bytes }, name: bytes.name, dir };
    } catch (e) {
      if (e instanceof ModelFolderError)
        throw new OpError(
          'InvalidArgument',
          e.message,
          { file: join(e.dir, e.missing) },
          { missing: e.missing },
        );
      throw e;
    }
  }

  /** The embedder of the model in use, through the cache (starts the process on first call). */
  embedder(): Promise<Embedder> {
    if (this.closed) return Promise.reject(new Error('the embedding service is closed'));
    if (this.cached !== undefined) return Promise.resolve(this.cached);
    this.starting ??= (async () => {
      const { spec } = this.specFor(this.state.current);
      const proc = await EmbedderProcess.start(spec, { onReport: (m) => this.o.log(m), ...this.o.process });
      if (this.closed) {
        // closed while it loaded: nobody will close it later
        await proc.close();
        throw new Error('the embedding service is closed');
      }
      return this.install(proc);
    })().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private install(proc: EmbedderProcess): Embedder {
    this.process = proc;
    this.current = proc.model;
    if (this.cache === undefined) {
      this.cache = new EmbeddingCache(proc.model, {
        dir: join(this.o.dir, 'vectors'),
        memoryEntries: this.o.memoryEntries,
        persistentBytes: this.o.persistentBytes,
        onMessage: (m) => this.o.log(m),
      });
    }
    const cached = cachedEmbedder(proc, this.cache);
    this.cached = cached;
    for (const listener of this.listeners) {
      try {
        listener(cached);
      } catch (e) {
        this.o.log(`embedding: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    return cached;
  }

  /**
   * Switches to a model (a name from `list` or a folder path): starts its process, then re-embeds in
   * the background what the cache and the text sources hold. The old model keeps serving until the
   * new one has loaded; a folder that cannot be used is refused naming the missing file.
   */
  async use(nameOrDir: string): Promise<{ model: ModelInfo; reembed: ReembedProgress }> {
    const { spec, name, dir } = this.specFor(nameOrDir);
    let proc: EmbedderProcess;
    try {
      proc = await EmbedderProcess.start(spec, { onReport: (m) => this.o.log(m), ...this.o.process });
    } catch (e) {
      throw new OpError(
        'InvalidArgument',
        `model ${name} does not load: ${e instanceof Error ? e.message : String(e)}`,
        dir === undefined ? undefined : { file: dir },
      );
    }
    const old = this.process;
    this.cached = undefined;
    this.install(proc);
    await old?.close();
    if (dir !== undefined) this.state.folders[name] = { dir, model: proc.model };
    this.state.current = name;
    this.writeState();
    this.o.log(`embedding: model ${name} (${proc.model.id.slice(0, 12)}…, ${proc.model.dims}-d) in use`);
    const progress: ReembedProgress = { model: proc.model.id, state: 'running', done: 0, total: 0 };
    this.progress = progress;
    const run = this.reembed(proc.model, progress).finally(() => {
      if (this.reembedding === run) this.reembedding = undefined;
    });
    this.reembedding = run;
    return { model: proc.model, reembed: { ...progress } };
  }

  /** Embeds (through the cache) every text known under another model; a newer `use` stops it. */
  private async reembed(model: ModelInfo, progress: ReembedProgress): Promise<void> {
    const cache = this.cache;
    const embedder = this.cached;
    if (cache === undefined || embedder === undefined) return;
    const superseded = () => this.closed || this.current?.id !== model.id;
    try {
      const texts = new Set(cache.persistent.textsNotOf(model.id, 1_000_000));
      for (const source of this.sources) for await (const t of source()) texts.add(t);
      const all = [...texts];
      progress.total = all.length;
      for (let i = 0; i < all.length; i += REEMBED_CHUNK) {
        if (superseded()) return;
        await embedder.embed(all.slice(i, i + REEMBED_CHUNK));
        progress.done = Math.min(all.length, i + REEMBED_CHUNK);
      }
      progress.state = 'done';
      this.o.log(`embedding: re-embedded ${all.length} texts with ${model.name}`);
    } catch (e) {
      if (superseded()) return;
      progress.state = 'failed';
      progress.message = e instanceof Error ? e.message : String(e);
      this.o.log(`embedding: re-embedding with ${model.name} failed: ${progress.message}`);
    }
  }

  /** Waits for a running re-embedding (tests, shutdown). */
  async settled(): Promise<void> {
    await this.reembedding;
  }

  /** The model in use, the cache, the process and the re-embedding (`op-dbus model info`). */
  async info(): Promise<EmbeddingStats> {
    const search = this.searchProgress?.();
    return (
      this.stats() ?? {
        model: await this.describeCurrent(),
        reembed: { ...this.progress },
        ...(search === undefined ? {} : { search }),
      }
    );
  }

  /** Stats' part, without starting anything (absent until the core has embedded). */
  stats(): EmbeddingStats | undefined {
    if (this.current === undefined) return undefined;
    const cache = this.cache?.stats();
    const search = this.searchProgress?.();
    return {
      model: this.current,
      ...(cache === undefined
        ? {}
        : { cache: { memory: cache.memory, persistent: cache.persistent, lastRebuild: cache.lastRebuild } }),
      ...(this.process === undefined ? {} : { process: withoutUndefined(this.process.stats()) }),
      reembed: { ...this.progress },
      ...(search === undefined ? {} : { search }),
    };
  }

  private async describeCurrent(): Promise<ModelInfo> {
    if (this.state.current === USE_LITE_NAME) return useLiteInfo();
    const f = this.state.folders[this.state.current];
    if (f === undefined) return useLiteInfo();
    return f.model;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.starting?.catch(() => undefined);
    // closing the process first fails the re-embedding's batch at once instead of waiting for it
    await this.process?.close();
    await this.reembedding?.catch(() => undefined);
    this.cache?.close();
  }
}

function withoutUndefined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}
