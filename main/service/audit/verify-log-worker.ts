import { parentPort, workerData } from 'node:worker_threads';
import type { AuditHead } from '../../common/contract/payloads.js';
import { OpError } from '../../common/contract/errors.js';
import { AuditLog } from './log.js';

/** What AuditLog.verifyOffThread hands the worker. */
export interface VerifyLogWorkerData {
  file: string;
  payloadDir: string;
  checkpoint: AuditHead | undefined;
}

// A whole verify on its own connection, so the core's event loop keeps serving calls meanwhile.
const data = workerData as VerifyLogWorkerData;
const log = AuditLog.open(data.file, { payloadDir: data.payloadDir });
try {
  parentPort?.postMessage({ response: log.verify(data.checkpoint) });
} catch (e) {
  // an OpError keeps its code (AuditCorrupt stays AuditCorrupt across the thread)
  parentPort?.postMessage({
    error: e instanceof Error ? e.message : String(e),
    ...(e instanceof OpError ? { code: e.code } : {}),
  });
} finally {
  log.close();
}
