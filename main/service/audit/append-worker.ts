import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { OpError } from '../../common/contract/errors.js';
import { insertRows, prepareInsert, type InsertStatements, type RowBatch } from './append-batch.js';
import {
  CLOSED,
  EXITED,
  RESULTS,
  type AppendRequest,
  type AppendResult,
  type AppendWorkerData,
} from './append-writer.js';

// The audit log's writer thread: inserts and commits the batches the log's thread builds, in the order
// posted, on its own connection, and reports each one (committed or why not) before taking the next.
const data = workerData as AppendWorkerData;
const { port, state } = data;

let db: Database.Database | undefined;
let insert: ((batch: RowBatch) => void) | undefined;
let openError: unknown;
try {
  db = new Database(data.file, { fileMustExist: true });
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${data.synchronous}`);
  db.pragma(`cache_size = -${data.cacheKib}`);
  const stmts: InsertStatements = prepareInsert(db);
  // IMMEDIATE: the write lock is taken before insertRows checks where the table ends.
  const txn = db.transaction((batch: RowBatch) => insertRows(stmts, batch));
  insert = (batch) => txn.immediate(batch);
} catch (e) {
  openError = e;
}

process.on('exit', () => {
  Atomics.store(state, EXITED, 1);
  Atomics.notify(state, RESULTS);
});

parentPort?.on('message', (m: AppendRequest) => {
  if ('close' in m) {
    db?.close();
    db = undefined;
    Atomics.store(state, CLOSED, 1);
    Atomics.notify(state, CLOSED);
    return;
  }
  let result: AppendResult;
  try {
    if (insert === undefined) throw openError;
    insert(m.batch);
    result = { ok: true };
  } catch (e) {
    result = {
      ok: false,
      code: e instanceof OpError ? e.code : 'Internal',
      message: errorMessage(e),
      fatal: insert === undefined,
    };
  }
  // Post first, then count: when the log's thread sees the count, the message is there to receive.
  port.postMessage(result);
  Atomics.add(state, RESULTS, 1);
  Atomics.notify(state, RESULTS);
});

function errorMessage(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? `${code}: ${e.message}` : e.message;
}
