import { type MessagePort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import {
  claimer,
  finishChunk,
  prepareWalk,
  runChunk,
  type ChunkMessage,
  type VerifyTask,
} from './verify-walk.js';

/** What verify-threads.ts hands each worker. */
export interface VerifyWorkerData {
  file: string;
  task: VerifyTask;
  board: Int32Array;
  port: MessagePort;
  thread: number;
  threads: number;
  roundRobin: boolean;
}

/**
 * A verify worker: its own read-only connection, one read transaction, and the chunks it claims from the
 * shared board, each posted back before the chunk is marked done. It never throws out: a chunk it cannot
 * walk is reported with the error and walked again by the main thread.
 */
function main(data: VerifyWorkerData): void {
  const { file, task, board, port, thread, threads, roundRobin } = data;
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('cache_size = -16384');
    const stmts = prepareWalk(db);
    db.exec('BEGIN');
    const next = claimer(board, task.chunks, thread, threads, roundRobin);
    for (let c = next(); c >= 0; c = next()) {
      let message: ChunkMessage;
      try {
        message = { chunk: c, thread, result: runChunk(stmts, task, c) };
      } catch (e) {
        message = { chunk: c, thread, error: e instanceof Error ? e.message : String(e) };
      }
      port.postMessage(message);
      finishChunk(board, c, message.result?.firstBad !== undefined);
    }
  } catch {
    // Opening failed (or the read transaction did): the chunks this thread did not claim are walked by others.
  } finally {
    try {
      db?.close();
    } catch {
      // closing a connection that failed to open
    }
    port.close();
  }
}

main(workerData as VerifyWorkerData);
