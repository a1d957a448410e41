import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { OpError } from '../../common/contract/errors.js';
import { Checkpointer } from './checkpointer.js';
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
  const log = AuditLog.open(paths.db, { payloadDir: paths.payloads, synchronous: sync ?? 'FULL' });
  try {
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
