import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import {
  CLAIMED,
  claimBoard,
  claimer,
  DONE,
  finishChunk,
  runChunk,
  STATUS,
  STOP,
  stitch,
  UNCLAIMED,
  walkChunk,
  type BadEntry,
  type ChunkMessage,
  type ChunkResult,
  type VerifyTask,
  type WalkStatements,
} from './verify-walk.js';
import type { VerifyWorkerData } from './verify-worker.js';

/** How a verify is spread over threads. */
export interface VerifyThreadOptions {
  /** Threads in all, this one included; 1 walks every row here, in one pass. */
  threads: number;
  /** Chunk c goes to thread c mod threads, and this thread leaves the workers' chunks to them (tests). */
  roundRobin?: boolean;
  /** How long a chunk a worker claimed may take before this thread walks it itself (a crashed worker). */
  stuckMs?: number;
}

/** What a verify run did, besides its answer. */
export interface VerifyRun {
  firstBad: BadEntry | undefined;
  /** Threads that walked chunks (1 when no worker could be started). */
  threads: number;
  chunks: number;
  /** Every bad entry a chunk reported, with the thread (0: this one) that walked it. */
  findings: { chunk: number; thread: number; seq: number }[];
  /** Chunks walked again here because their start did not meet the previous chunk's end (after a gap). */
  rewalked: number;
}

const DEFAULT_STUCK_MS = 30_000;
/** How long this thread waits in one Atomics.wait before it looks at the ports again. */
const WAIT_SLICE_MS = 20;

/**
 * Runs the verify walk over `task.chunks` chunks on `threads` threads: this one (with `db`, inside the
 * caller's read transaction) and workers with their own read-only connections to `file`. Blocks until the
 * answer is known (Atomics.wait), so the caller stays synchronous. The answer is the sequential walk's:
 * see `stitch`. Without a compiled worker script (or with threads 1) everything is walked here.
 */
export function runVerify(
  stmts: WalkStatements,
  file: string | undefined,
  task: VerifyTask,
  opts: VerifyThreadOptions,
): VerifyRun {
  const script = file === undefined ? undefined : workerScript();
  const threads = script === undefined ? 1 : Math.max(1, Math.min(opts.threads, task.chunks));
  const findings: VerifyRun['findings'] = [];
  let rewalked = 0;
  const walkHere = (c: number, start: Parameters<typeof walkChunk>[3]) => {
    rewalked += 1;
    return walkChunk(stmts, task, c, start);
  };
  if (threads === 1) {
    const results: ChunkResult[] = [];
    for (let c = 0; c < task.chunks; c++) {
      const r = runChunk(stmts, task, c);
      results.push(r);
      if (r.firstBad !== undefined) {
        findings.push({ chunk: c, thread: 0, seq: r.firstBad.seq });
        break;
      }
    }
    const firstBad = stitch(task, results, walkHere);
    return { firstBad, threads: 1, chunks: task.chunks, findings, rewalked };
  }

  const board = claimBoard(task.chunks);
  const ports: MessagePort[] = [];
  const workers: Worker[] = [];
  const results: (ChunkResult | undefined)[] = new Array<ChunkResult | undefined>(task.chunks);
  const roundRobin = opts.roundRobin === true;
  const take = (m: ChunkMessage): void => {
    if (m.result === undefined) return; // walked again by stitch
    results[m.chunk] = m.result;
    if (m.result.firstBad !== undefined) {
      findings.push({ chunk: m.chunk, thread: m.thread, seq: m.result.firstBad.seq });
    }
  };
  const drain = (): void => {
    for (const port of ports) {
      for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
        take(m.message as ChunkMessage);
      }
    }
  };
  try {
    for (let thread = 1; thread < threads; thread++) {
      const { port1, port2 } = new MessageChannel();
      const data: VerifyWorkerData = {
        file: file as string,
        task,
        board,
        port: port2,
        thread,
        threads,
        roundRobin,
      };
      const worker = new Worker(script as URL, { workerData: data, transferList: [port2] });
      worker.on('error', () => undefined); // its chunks are walked here instead
      worker.unref();
      workers.push(worker);
      ports.push(port1);
    }
    // This thread's share, then every chunk before the stop mark: its own, or a worker's once posted.
    const own = (c: number): void => {
      const r = runChunk(stmts, task, c);
      take({ chunk: c, thread: 0, result: r });
      finishChunk(board, c, r.firstBad !== undefined);
    };
    const next = claimer(board, task.chunks, 0, threads, roundRobin);
    for (let c = next(); c >= 0; c = next()) own(c);
    const stuckMs = opts.stuckMs ?? DEFAULT_STUCK_MS;
    const needed = (): number =>
      roundRobin ? task.chunks : Math.min(task.chunks, Atomics.load(board, STOP));
    for (let c = 0; c < needed(); c++) {
      const since = Date.now();
      for (;;) {
        const status = Atomics.load(board, STATUS + c);
        if (status === DONE) break;
        const waited = Date.now() - since;
        // Unclaimed: a worker has not got to it (or never started). Round-robin leaves it to its owner a while.
        if (status === UNCLAIMED && (!roundRobin || waited > stuckMs)) {
          if (Atomics.compareExchange(board, STATUS + c, UNCLAIMED, CLAIMED) === UNCLAIMED) own(c);
          continue;
        }
        if (waited > stuckMs) break; // stitch walks it here
        Atomics.wait(board, STATUS + c, status, WAIT_SLICE_MS);
        drain();
      }
    }
    drain();
  } finally {
    for (const w of workers) void w.terminate();
    for (const p of ports) p.close();
  }
  findings.sort((a, b) => a.chunk - b.chunk);
  const firstBad = stitch(task, results, walkHere);
  return { firstBad, threads, chunks: task.chunks, findings, rewalked };
}

const cachedScripts = new Map<string, URL | null>();

/** The compiled verify worker (see compiledWorker). */
export function workerScript(): URL | undefined {
  return compiledWorker('verify-worker.js');
}

/**
 * A compiled worker script of this folder: beside this module when it runs from dist/, else (tests
 * run the TypeScript sources) in the project's dist/ tree. Undefined when there is none: callers
 * then do the work on their own thread.
 */
export function compiledWorker(name: string): URL | undefined {
  const cached = cachedScripts.get(name);
  if (cached !== undefined) return cached ?? undefined;
  let found: URL | null = null;
  const here = fileURLToPath(import.meta.url);
  const sibling = join(dirname(here), name);
  if (existsSync(sibling)) {
    found = pathToFileURL(sibling);
  } else if (here.endsWith('.ts')) {
    for (let dir = dirname(here); dir !== dirname(dir); dir = dirname(dir)) {
      if (existsSync(join(dir, 'package.json'))) {
        const built = join(dir, 'dist', 'main', 'service', 'audit', name);
        if (existsSync(built)) found = pathToFileURL(built);
        break;
      }
    }
  }
  cachedScripts.set(name, found);
  return found ?? undefined;
}
