import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { ErrorCode } from '../../common/contract/errors.js';
import { transferables, type RowBatch } from './append-batch.js';

/** What the log hands the writer thread. */
export interface AppendWorkerData {
  file: string;
  synchronous: 'NORMAL' | 'FULL';
  cacheKib: number;
  /** Results go back on this port, one per batch, in the order the batches were posted. */
  port: MessagePort;
  /** Shared words: RESULTS (results posted), CLOSED, EXITED. */
  state: Int32Array;
}

/** A message to the writer thread. */
export type AppendRequest = { batch: RowBatch } | { close: true };

/** The writer thread's answer to one batch. `fatal`: it has no connection, so it can commit nothing. */
export type AppendResult = { ok: true } | { ok: false; code: ErrorCode; message: string; fatal: boolean };

export const RESULTS = 0;
export const CLOSED = 1;
export const EXITED = 2;
/** How long the log's thread sleeps in one Atomics.wait before it looks again. */
const WAIT_SLICE_MS = 50;
/** How long close waits for the writer thread to close its connection. */
const CLOSE_WAIT_MS = 5_000;

/**
 * The log's end of its writer thread: posts batches (their buffers transferred, not copied) and hands
 * each result to `onResult` in posting order, from the event loop or, while `drain` blocks, at once.
 * Holds the event loop open only while batches are in flight.
 */
export class AppendWriter {
  private posted = 0;
  private settled = 0;
  private dead = false;
  private readonly state = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
  private readonly port: MessagePort;
  private readonly worker: Worker;

  constructor(
    script: URL,
    data: Omit<AppendWorkerData, 'port' | 'state'>,
    private readonly onResult: (r: AppendResult) => void,
    private readonly onExit: (reason: string) => void,
  ) {
    const { port1, port2 } = new MessageChannel();
    const workerData: AppendWorkerData = { ...data, port: port2, state: this.state };
    // Own stdio streams: piping them to process.stdout/stderr would touch those at once, which makes a pipe
    // on fd 1 or 2 non-blocking, and the process's own writeSync to it can then fail with EAGAIN.
    this.worker = new Worker(script, {
      workerData,
      transferList: [port2],
      execArgv: workerExecArgv(),
      stdout: true,
      stderr: true,
    });
    this.worker.stdout.on('data', (d: Buffer) => process.stdout.write(d));
    this.worker.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    this.worker.unref();
    this.worker.on('error', (e) => this.exited(`audit writer thread failed: ${e.message}`));
    this.worker.on('exit', (code) => this.exited(`audit writer thread exited with ${code}`));
    this.port = port1;
    this.port.on('message', (r: AppendResult) => this.take(r));
    this.port.unref();
  }

  /** Batches posted and not yet answered. */
  get inFlight(): number {
    return this.posted - this.settled;
  }

  /** Whether the thread is gone (its results will never come). */
  get stopped(): boolean {
    return this.dead;
  }

  /** Hands a batch to the thread; its buffers are detached here. */
  post(batch: RowBatch): void {
    const request: AppendRequest = { batch };
    this.worker.postMessage(request, transferables(batch));
    if (this.posted === this.settled) this.port.ref();
    this.posted += 1;
  }

  /** Blocks until every posted batch has been answered (each answer goes to onResult first). */
  drain(): void {
    while (this.inFlight > 0 && !this.dead) {
      const seen = Atomics.load(this.state, RESULTS);
      const m = receiveMessageOnPort(this.port);
      if (m !== undefined) {
        this.take(m.message as AppendResult);
        continue;
      }
      if (Atomics.load(this.state, EXITED) === 1) {
        this.exited('audit writer thread exited');
        return;
      }
      Atomics.wait(this.state, RESULTS, seen, WAIT_SLICE_MS);
    }
  }

  /** Closes the thread's connection and ends it; call after drain. */
  close(): void {
    if (!this.dead) {
      this.dead = true;
      const request: AppendRequest = { close: true };
      this.worker.postMessage(request);
      // Its connection closes before the caller closes its own, so the last one out checkpoints the WAL.
      Atomics.wait(this.state, CLOSED, 0, CLOSE_WAIT_MS);
    }
    this.port.close();
    void this.worker.terminate();
  }

  private take(r: AppendResult): void {
    this.settled += 1;
    if (this.settled === this.posted) this.port.unref();
    this.onResult(r);
  }

  private exited(reason: string): void {
    if (this.dead) return;
    this.dead = true;
    this.port.unref();
    // Answers already posted are still good; what never came is lost with the thread.
    const answers: AppendResult[] = [];
    for (let m = receiveMessageOnPort(this.port); m !== undefined; m = receiveMessageOnPort(this.port)) {
      answers.push(m.message as AppendResult);
    }
    this.settled = this.posted;
    for (const r of answers) this.onResult(r);
    this.onExit(reason);
  }
}

/** The process's Node options less those a worker refuses (`node --input-type=module -e ...` starts the log in tests). */
function workerExecArgv(): string[] {
  const out: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const arg = process.execArgv[i] as string;
    if (arg === '--input-type') i += 1;
    else if (!arg.startsWith('--input-type=')) out.push(arg);
  }
  return out;
}
