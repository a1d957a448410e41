import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { OpError } from '../../common/contract/errors.js';
import { Checkpointer } from './checkpointer.js';
import { checkIntegrity, earlierLogEvidence } from './integrity.js';
import { AuditLog, type RetentionPolicy } from './log.js';

/**
 * Where the audit log lives in the core's data dir. The SQLite files and the payload store are
 * separate directories so storage can treat them differently (no-CoW for audit/, compression for
 * payloads/) and so a pre-apply snapshot of the host never includes them.
 */
export function auditPaths(dataDir: string): { db: string; payloads: string; key: string } {
  return {
    db: join(dataDir, 'audit', 'audit.sqlite'),
    payloads: join(dataDir, 'payloads'),
    key: join(dataDir, 'keys', 'audit-checkpoint.key'),
  };
}

/** The log and its checkpointer, configured from the environment (OP_DBUS_AUDIT_*). */
export interface AuditSetup {
  log: AuditLog;
  checkpointer: Checkpointer;
}

/** Opens the core's audit log and checkpointer (moving a log from the old location first) and starts the timer. */
export function openAudit(
  dataDir: string,
  env: NodeJS.ProcessEnv = process.env,
  onError: (e: unknown) => void = () => undefined,
): AuditSetup {
  const paths = auditPaths(dataDir);
  moveLegacyLog(dataDir, paths.db);
  const sync = env['OP_DBUS_AUDIT_SYNCHRONOUS'];
  if (sync !== undefined && sync !== 'FULL' && sync !== 'NORMAL') {
    throw new OpError(
      'InvalidArgument',
      `OP_DBUS_AUDIT_SYNCHRONOUS must be FULL or NORMAL, not ${JSON.stringify(sync)}`,
    );
  }
  // A damaged database is refused before anything is appended to it.
  checkIntegrity(paths.db);
  const newLog = acknowledgedNewLog(dataDir, paths, env);
  const log = AuditLog.open(paths.db, { payloadDir: paths.payloads, synchronous: sync ?? 'FULL' });
  try {
    // the acknowledgement is the new log's first entry: nobody reads this log without seeing it
    if (newLog !== undefined) {
      log.append({ kind: 'recovery', actor: { uid: null, subject: 'core' }, plugin: null, summary: newLog });
    }
    const retention: RetentionPolicy = {
      maxAgeMs: numberFromEnv(env, 'OP_DBUS_AUDIT_PAYLOAD_MAX_AGE_DAYS', 365) * 86_400_000,
      maxBytes: numberFromEnv(env, 'OP_DBUS_AUDIT_PAYLOAD_MAX_BYTES', 1024 ** 3),
    };
    const checkpointer = Checkpointer.open(log, {
      keyFile: paths.key,
      intervalMs: numberFromEnv(env, 'OP_DBUS_AUDIT_CHECKPOINT_INTERVAL_MS', 60_000),
      retention,
      onError,
      ...(env['OP_DBUS_AUDIT_ORIGIN'] !== undefined ? { origin: env['OP_DBUS_AUDIT_ORIGIN'] } : {}),
    });
    log.prunePayloads(retention);
    checkpointer.start();
    return { log, checkpointer };
  } catch (e) {
    log.close();
    throw e;
  }
}

/**
 * A missing or empty database where the data dir shows a log existed (its key, its payloads) is refused:
 * replacing it silently would hide the loss of the whole history. With OP_DBUS_AUDIT_NEW_LOG=1 (`op-dbus
 * core --new-audit-log`) a new log begins; the summary of its first entry is returned. Undefined otherwise.
 */
function acknowledgedNewLog(
  dataDir: string,
  paths: { db: string; key: string; payloads: string },
  env: NodeJS.ProcessEnv,
): string | undefined {
  const state = !existsSync(paths.db) ? 'missing' : statSync(paths.db).size === 0 ? 'empty' : undefined;
  if (state === undefined) return undefined;
  const evidence = earlierLogEvidence(dataDir, paths);
  if (evidence === undefined) return undefined;
  if (env['OP_DBUS_AUDIT_NEW_LOG'] !== '1') {
    throw new OpError(
      'AuditCorrupt',
      `the audit log's database is ${state}, but a log existed here (${evidence}): the core does not ` +
        'replace a lost history silently. If it is truly gone, start the core once with --new-audit-log ' +
        '(or OP_DBUS_AUDIT_NEW_LOG=1): a new log begins, and its first entry records that it was asked for',
      { file: paths.db },
    );
  }
  return `new audit log, as asked (OP_DBUS_AUDIT_NEW_LOG=1): the previous database was ${state} though ${evidence}; the history before this entry is not in this log`;
}

/** Logs written before the audit/ directory existed lived at <dataDir>/audit.sqlite. */
function moveLegacyLog(dataDir: string, db: string): void {
  const legacy = join(dataDir, 'audit.sqlite');
  if (!existsSync(legacy) || existsSync(db)) return;
  mkdirSync(join(dataDir, 'audit'), { recursive: true, mode: 0o700 });
  for (const suffix of ['-wal', '-shm', '']) {
    if (existsSync(legacy + suffix)) renameSync(legacy + suffix, db + suffix);
  }
}

function numberFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) {
    throw new OpError(
      'InvalidArgument',
      `${name} must be a non-negative number, not ${JSON.stringify(text)}`,
    );
  }
  return n;
}
