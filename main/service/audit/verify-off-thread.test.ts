import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { AuditLog } from './log.js';
import { compiledWorker } from './verify-threads.js';

// AuditVerify runs verifyOffThread: the same answer as verify, while the core's event loop keeps
// serving other calls (a verify of 1M entries takes seconds).
let dir: string;
let log: AuditLog;
const ENTRIES = 120_000;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'opdbus-verify-off-thread-'));
  log = AuditLog.open(join(dir, 'audit', 'audit.sqlite'), { synchronous: 'NORMAL' });
  const actor = { uid: 0, subject: ':1.7', action: 'org.opdbus.apply' };
  for (let i = 0; i < ENTRIES; i += 4000) {
    log.appendMany(
      Array.from({ length: 4000 }, (_, j) => ({
        kind: 'plan' as const,
        actor,
        plugin: 'hostname',
        summary: `plan ${i + j}: 1 change(s): hostname/location`,
      })),
    );
  }
}, 120_000);
afterAll(() => {
  log?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('verifyOffThread', () => {
  it('has a compiled worker to run on (the test setup builds dist/)', () => {
    expect(compiledWorker('verify-log-worker.js')).toBeDefined();
  });

  it('answers as verify does, and the event loop keeps ticking meanwhile', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const started = Date.now();
    const off = await log.verifyOffThread();
    const elapsed = Date.now() - started;
    clearInterval(timer);
    expect(off).toEqual(log.verify());
    expect(off).toMatchObject({ ok: true, size: ENTRIES });
    // a verify on this thread would let no timer run until it returned
    expect(ticks).toBeGreaterThanOrEqual(Math.floor(elapsed / 10 / 4));
    expect(ticks).toBeGreaterThan(3);
  }, 60_000);

  it('names the same first bad entry as verify after tampering', async () => {
    const attacker = new Database(join(dir, 'audit', 'audit.sqlite'));
    attacker.prepare("UPDATE entries SET summary = 'changed' WHERE seq = 77777").run();
    attacker.close();
    const off = await log.verifyOffThread();
    expect(off.ok).toBe(false);
    expect(off.firstBad?.seq).toBe(77777);
    expect(off).toEqual(log.verify());
  }, 60_000);
});
