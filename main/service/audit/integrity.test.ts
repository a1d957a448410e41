import { spawnSync } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OpError } from '../../common/contract/errors.js';
import { auditPaths, openAudit } from './layout.js';
import { AuditLog, type AppendInput } from './log.js';

// Real SQLite files in a real data dir, damaged as a disk or a careless admin would: the core refuses to
// start on them, naming the file, and verify names the first entry it cannot read instead of `Internal`.
const ENV = { OP_DBUS_AUDIT_CHECKPOINT_INTERVAL_MS: '0' };
let dataDir: string;

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'opdbus-integrity-'));
});
afterEach(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

const entry = (i: number): AppendInput => ({
  kind: 'plan',
  actor: { uid: 0, subject: ':1.1' },
  plugin: 'hostname',
  summary: `entry ${i}: pretty_hostname changed ${'x'.repeat(100)}`,
});

/** A data dir with a log of `n` entries, as the core leaves it. */
function writeLog(n: number): string {
  const { log, checkpointer } = openAudit(dataDir, ENV);
  log.appendMany(Array.from({ length: n }, (_, i) => entry(i)));
  checkpointer.stop();
  log.close();
  return auditPaths(dataDir).db;
}

function zeroPagesInTheMiddle(file: string, pages: number): void {
  const middle = Math.floor(statSync(file).size / 4096 / 2) * 4096;
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, Buffer.alloc(pages * 4096), 0, pages * 4096, middle);
  } finally {
    closeSync(fd);
  }
}

function refusal(fn: () => unknown): OpError {
  try {
    fn();
  } catch (e) {
    if (e instanceof OpError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('a damaged audit database', () => {
  it('four zeroed pages mid-file: the core refuses to start, naming the file and the first unreadable entry', () => {
    const file = writeLog(5000);
    zeroPagesInTheMiddle(file, 4);
    const e = refusal(() => openAudit(dataDir, ENV));
    expect(e.code).toBe('AuditCorrupt');
    expect(e.where?.file).toBe(file);
    expect(e.message).toMatch(
      /database is damaged \(SQLite: .+\); the first entry that cannot be read is \d+/,
    );
    expect(e.message).toMatch(/--new-audit-log/);
  });

  it('verify names the first entry it cannot read, not `Internal: database disk image is malformed`', () => {
    const file = writeLog(5000);
    zeroPagesInTheMiddle(file, 4);
    const log = AuditLog.open(file, { writerThread: false });
    try {
      const r = log.verify();
      expect(r.ok).toBe(false);
      expect(r.firstBad?.seq).toBeGreaterThan(0);
      expect(r.firstBad?.seq).toBeLessThan(5000);
      expect(r.firstBad?.reason).toMatch(/cannot be read: database disk image is malformed/);
    } finally {
      log.close();
    }
  });

  it('a log that is whole passes the check, and the check costs little', () => {
    writeLog(2000);
    const started = performance.now();
    const { log, checkpointer } = openAudit(dataDir, ENV);
    const ms = performance.now() - started;
    checkpointer.stop();
    expect(log.verify()).toMatchObject({ ok: true, size: 2000 });
    log.close();
    console.log(`openAudit with quick_check, 2000 entries: ${ms.toFixed(1)} ms`);
  });
});

describe('a missing or empty audit database where a log existed', () => {
  it('deleted, or truncated to zero: refused loudly, naming the evidence', () => {
    const file = writeLog(3);
    for (const damage of [() => truncateSync(file, 0), () => unlinkSync(file)]) {
      damage();
      const e = refusal(() => openAudit(dataDir, ENV));
      expect(e.code).toBe('AuditCorrupt');
      expect(e.where?.file).toBe(file);
      expect(e.message).toMatch(
        /database is (empty|missing), but a log existed here \(its signing key keys\/audit-checkpoint\.key exists\)/,
      );
    }
  });

  it('with the acknowledgement a new log begins, and that is its first entry', () => {
    const file = writeLog(3);
    unlinkSync(file);
    rmSync(`${file}-wal`, { force: true });
    const { log, checkpointer } = openAudit(dataDir, { ...ENV, OP_DBUS_AUDIT_NEW_LOG: '1' });
    checkpointer.stop();
    const first = log.list({}).entries;
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ seq: 0, kind: 'recovery', actor: { uid: null, subject: 'core' } });
    expect(first[0]?.summary).toMatch(
      /^new audit log, as asked \(OP_DBUS_AUDIT_NEW_LOG=1\): the previous database was missing/,
    );
    log.close();
    // from then on it is an ordinary log: no new entry, and no refusal, at the next start
    const again = openAudit(dataDir, ENV);
    again.checkpointer.stop();
    expect(again.log.head().size).toBe(1);
    again.log.close();
  });

  it('a data dir the core never used, and a log with no entry yet, start without a word', () => {
    const first = openAudit(dataDir, ENV);
    first.checkpointer.stop();
    first.log.close();
    const second = openAudit(dataDir, ENV);
    second.checkpointer.stop();
    expect(second.log.head().size).toBe(0);
    second.log.close();
  });
});

describe('op-dbus core on a damaged data dir', () => {
  it('exits 1 at once with AuditCorrupt naming the file (before it reaches any bus)', () => {
    const file = writeLog(5000);
    zeroPagesInTheMiddle(file, 4);
    const cli = resolve(import.meta.dirname, '../../../dist/main/op-dbus.js');
    const r = spawnSync(process.execPath, [cli, 'core', '--data-dir', dataDir], {
      encoding: 'utf8',
      env: {
        ...process.env,
        DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent/bus',
        OP_DBUS_PLACEMENT: 'off',
      },
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`AuditCorrupt: the audit log's database is damaged`);
    expect(r.stderr).toContain(file);
  });
});
