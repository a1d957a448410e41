import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EmbedOptions, Embedder, ModelInfo } from './embedder.js';
import type { ChildReply, ChildRequest, ModelSpec } from './embedder-protocol.js';

/** The uid and gid of nobody/nogroup on Debian: what the embedder runs as when the core is root. */
export const UNPRIVILEGED = { uid: 65534, gid: 65534 } as const;

export interface EmbedderProcessOptions {
  /** Texts per batch sent to the process. */
  batchSize?: number;
  /** Texts waiting (queued, not yet sent) beyond which embed() waits for room. */
  maxQueuedTexts?: number;
  /** A batch that takes longer is taken for hung: the process is killed and restarted. */
  batchTimeoutMs?: number;
  /** Loading a model that takes longer fails. */
  loadTimeoutMs?: number;
  /** Whom the process runs as when the core is root (default nobody); ignored otherwise. */
  runAs?: { uid: number; gid: number };
  /** Things a person should know: restarts, retries, batches given up on. */
  onReport?: (message: string) => void;
}

export interface EmbedderProcessStats {
  pid: number | undefined;
  uid: number | undefined;
  batches: number;
  texts: number;
  queuedTexts: number;
  restarts: number;
  retried: number;
  failedBatches: number;
}

/** A batch failed twice (the process crashed, hung or refused it); its texts got no vectors. */
export class EmbedderFailure extends Error {}

interface Batch {
  texts: string[];
  attempts: number;
  resolve: (v: Float32Array[]) => void;
  reject: (e: Error) => void;
}

/** The compiled child script: beside this module in dist/, else (tests run sources) the project's dist/. */
export function childScript(): string {
  const here = fileURLToPath(import.meta.url);
  const sibling = join(dirname(here), 'embedder-child.js');
  if (existsSync(sibling)) return sibling;
  for (let dir = dirname(here); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) {
      const built = join(dir, 'dist', 'main', 'service', 'embed', 'embedder-child.js');
      if (existsSync(built)) return built;
      break;
    }
  }
  throw new Error('the embedder process script is not built (npm run build)');
}

/**
 * The embedder as a child process: model files are untrusted input, so they are parsed in a
 * process that drops to an unprivileged uid. Texts go in batches through a bounded queue, one batch
 * in flight; a crashed or hung process is restarted and its batch retried once, then reported.
 */
export class EmbedderProcess implements Embedder {
  private child: ChildProcess | undefined;
  private childUid: number | undefined;
  private readonly queue: Batch[] = [];
  private inFlight: { batch: Batch; id: number; timer: NodeJS.Timeout } | undefined;
  private nextId = 1;
  private readonly waitingForRoom: (() => void)[] = [];
  private starting: Promise<void> | undefined;
  private closed = false;
  /** A batch is taken from the queue and waits for the process to (re)start. */
  private pumping = false;
  private readonly counters = { batches: 0, texts: 0, restarts: 0, retried: 0, failedBatches: 0 };
  private readonly o: Required<Omit<EmbedderProcessOptions, 'runAs'>> & {
    runAs: { uid: number; gid: number };
  };

  /** What the process said it loaded (checked); set before start() resolves, the same after every restart. */
  private loaded: ModelInfo | undefined;

  private constructor(
    private readonly spec: ModelSpec,
    options: EmbedderProcessOptions,
  ) {
    this.o = {
      batchSize: options.batchSize ?? 32,
      maxQueuedTexts: options.maxQueuedTexts ?? 4096,
      batchTimeoutMs: options.batchTimeoutMs ?? 60_000,
      loadTimeoutMs: options.loadTimeoutMs ?? 60_000,
      runAs: options.runAs ?? UNPRIVILEGED,
      onReport: options.onReport ?? (() => undefined),
    };
  }

  /** Starts the process and loads the model; resolves once it is ready to embed. */
  static async start(spec: ModelSpec, options: EmbedderProcessOptions = {}): Promise<EmbedderProcess> {
    const p = new EmbedderProcess(spec, options);
    await p.ensureChild();
    return p;
  }

  /** The model the process loaded, as it described it (validated): never a placeholder. */
  get model(): ModelInfo {
    if (this.loaded === undefined) throw new Error('the embedder process has not loaded its model');
    return this.loaded;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  stats(): EmbedderProcessStats {
    return {
      pid: this.child?.pid,
      uid: this.childUid,
      queuedTexts: this.queuedTexts(),
      ...this.counters,
    };
  }

  private queuedTexts(): number {
    return this.queue.reduce((n, b) => n + b.texts.length, 0);
  }

  private ensureChild(): Promise<void> {
    if (this.child !== undefined) return Promise.resolve();
    this.starting ??= this.spawn().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private spawn(): Promise<void> {
    const root = process.getuid?.() === 0;
    const child = fork(childScript(), [], {
      serialization: 'advanced',
      execArgv: [],
      cwd: '/',
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        HOME: '/nonexistent',
        ORT_DISABLE_TELEMETRY: '1',
      },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      ...(root ? { uid: this.o.runAs.uid, gid: this.o.runAs.gid } : {}),
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(
          new Error(`the embedder process did not load ${this.describeSpec()} in ${this.o.loadTimeoutMs} ms`),
        );
      }, this.o.loadTimeoutMs);
      const onEarlyExit = (code: number | null, signal: string | null) => {
        clearTimeout(timer);
        reject(new Error(`the embedder process exited (${signal ?? code}) while loading: ${stderr.trim()}`));
      };
      child.once('exit', onEarlyExit);
      child.once('message', (m: ChildReply) => {
        clearTimeout(timer);
        child.off('exit', onEarlyExit);
        if (m.type !== 'ready') {
          child.kill('SIGKILL');
          reject(
            new Error(m.type === 'load-failed' ? m.message : `unexpected reply ${m.type} while loading`),
          );
          return;
        }
        if (!validModel(m.model)) {
          child.kill('SIGKILL');
          reject(new Error('the embedder process described its model wrongly'));
          return;
        }
        if (this.loaded !== undefined && m.model.id !== this.loaded.id) {
          child.kill('SIGKILL');
          reject(new Error('the embedder process came back with another model'));
          return;
        }
        this.loaded = m.model;
        this.child = child;
        this.childUid = m.uid;
        child.on('message', (reply: ChildReply) => this.onReply(child, reply));
        child.on('exit', (code, signal) => this.onExit(child, `exited (${signal ?? code ?? '?'})`));
        resolve();
      });
      const load: ChildRequest = { type: 'load', spec: this.spec };
      child.send(load);
    });
  }

  private describeSpec(): string {
    return this.spec.kind === 'use-lite' ? 'USE-lite' : `model ${this.spec.bytes.name}`;
  }

  /**
   * Embeds in batches of batchSize through the queue. Background work waits while maxQueuedTexts are
   * queued (the bound); urgent texts (a query) go to the front of the queue and never wait for room.
   */
  async embed(texts: readonly string[], options: EmbedOptions = {}): Promise<Float32Array[]> {
    if (this.closed) throw new Error('the embedder process is closed');
    const parts: Promise<Float32Array[]>[] = [];
    const urgent: Batch[] = [];
    for (let i = 0; i < texts.length; i += this.o.batchSize) {
      if (options.urgent !== true)
        while (this.queuedTexts() >= this.o.maxQueuedTexts && !this.closed)
          await new Promise<void>((r) => this.waitingForRoom.push(r));
      if (this.closed) throw new Error('the embedder process is closed');
      const slice = texts.slice(i, i + this.o.batchSize);
      parts.push(
        new Promise<Float32Array[]>((resolve, reject) => {
          const batch: Batch = { texts: slice, attempts: 0, resolve, reject };
          if (options.urgent === true) urgent.push(batch);
          else this.queue.push(batch);
        }),
      );
      if (options.urgent !== true) this.pump();
    }
    if (urgent.length > 0) {
      this.queue.unshift(...urgent);
      this.pump();
    }
    return (await Promise.all(parts)).flat();
  }

  private pump(): void {
    if (this.inFlight !== undefined || this.pumping || this.closed) return;
    const batch = this.queue.shift();
    if (batch === undefined) return;
    for (const wake of this.waitingForRoom.splice(0)) wake();
    this.pumping = true;
    void this.ensureChild().then(
      () => {
        this.pumping = false;
        this.send(batch);
      },
      (e: unknown) => {
        this.pumping = false;
        batch.attempts++;
        this.failed(batch, e instanceof Error ? e.message : String(e));
      },
    );
  }

  private send(batch: Batch): void {
    const child = this.child;
    if (child === undefined) return this.failed(batch, 'the embedder process is gone');
    batch.attempts++;
    const id = this.nextId++;
    const timer = setTimeout(() => {
      this.report(
        `the embedder process (pid ${child.pid}) hung on a batch of ${batch.texts.length} texts for ${this.o.batchTimeoutMs} ms: killed`,
      );
      child.kill('SIGKILL');
    }, this.o.batchTimeoutMs);
    this.inFlight = { batch, id, timer };
    const request: ChildRequest = { type: 'embed', id, texts: batch.texts };
    child.send(request);
  }

  private onReply(child: ChildProcess, reply: ChildReply): void {
    const f = this.inFlight;
    if (child !== this.child || f === undefined) return;
    if ((reply.type !== 'vectors' && reply.type !== 'embed-failed') || reply.id !== f.id) return;
    clearTimeout(f.timer);
    this.inFlight = undefined;
    if (reply.type === 'embed-failed') {
      this.failed(f.batch, reply.message);
    } else if (!validVectors(reply.vectors, f.batch.texts.length, this.model.dims)) {
      this.failed(f.batch, 'the embedder process returned malformed vectors');
    } else {
      this.counters.batches++;
      this.counters.texts += f.batch.texts.length;
      f.batch.resolve(reply.vectors);
    }
    this.pump();
  }

  private onExit(child: ChildProcess, how: string): void {
    if (child !== this.child) return;
    this.child = undefined;
    if (this.closed) return;
    this.counters.restarts++;
    const f = this.inFlight;
    this.inFlight = undefined;
    if (f !== undefined) {
      clearTimeout(f.timer);
      this.report(
        `the embedder process (pid ${child.pid}) ${how} during a batch of ${f.batch.texts.length} texts: restarting it`,
      );
      this.retryOrFail(f.batch, `the embedder process ${how}`);
    } else {
      this.report(`the embedder process (pid ${child.pid}) ${how}: it restarts with the next batch`);
    }
    this.pump();
  }

  private retryOrFail(batch: Batch, why: string): void {
    if (batch.attempts < 2) {
      this.counters.retried++;
      this.queue.unshift(batch);
    } else {
      this.failed(batch, why);
    }
  }

  private failed(batch: Batch, why: string): void {
    this.counters.failedBatches++;
    const message = `a batch of ${batch.texts.length} texts got no vectors after ${batch.attempts} attempts: ${why}`;
    this.report(message);
    batch.reject(new EmbedderFailure(message));
    this.pump();
  }

  private report(message: string): void {
    this.o.onReport(`embedder: ${message}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const child = this.child;
    this.child = undefined;
    if (this.inFlight !== undefined) clearTimeout(this.inFlight.timer);
    for (const b of [...(this.inFlight === undefined ? [] : [this.inFlight.batch]), ...this.queue.splice(0)])
      b.reject(new Error('the embedder process was closed'));
    this.inFlight = undefined;
    for (const wake of this.waitingForRoom.splice(0)) wake();
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const request: ChildRequest = { type: 'close' };
    child.send(request);
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  }
}

function validModel(m: unknown): m is ModelInfo {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as Record<string, unknown>;
  return (
    typeof r['id'] === 'string' &&
    /^[0-9a-f]{64}$/.test(r['id']) &&
    typeof r['name'] === 'string' &&
    typeof r['label'] === 'string' &&
    (r['runtime'] === 'tfjs-use-lite' || r['runtime'] === 'onnx-bert') &&
    Number.isInteger(r['dims']) &&
    (r['dims'] as number) > 0 &&
    (r['dims'] as number) <= 8192
  );
}

/** The process is less trusted than the core: its vectors are checked before anyone uses them. */
function validVectors(v: unknown, count: number, dims: number): v is Float32Array[] {
  if (!Array.isArray(v) || v.length !== count) return false;
  return v.every((x) => x instanceof Float32Array && x.length === dims && x.every(Number.isFinite));
}
