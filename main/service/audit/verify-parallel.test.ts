import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditHead } from '../../common/contract/payloads.js';
import { type AppendInput, AuditLog, type VerifyOptions } from './log.js';
import { workerScript } from './verify-threads.js';

// Chunks of 16 entries over a 100-entry log: chunks 0..6, the last one short. Round-robin with 3 threads:
// this thread walks chunks 0, 3, 6; worker 1 walks 1 and 4; worker 2 walks 2 and 5.
const PARALLEL: VerifyOptions = { threads: 3, chunkSize: 16, roundRobin: true };
const DYNAMIC: VerifyOptions = { threads: 2, chunkSize: 16 };
const SIZE = 100;

let dir: string;
let file: string;
let log: AuditLog | undefined;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-verify-parallel-'));
  file = path.join(dir, 'audit.db');
});

afterEach(() => {
  log?.close();
  log = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

function input(i: number): AppendInput {
  return {
    kind: i % 3 === 0 ? 'plan' : 'apply',
    actor: { uid: 1000, subject: ':1.42', action: 'org.opdbus.apply' },
    plugin: i % 5 === 0 ? null : 'hostname',
    summary: `entry ${i}: "quoted" and plain text`,
    durations: { apply_ms: i + 0.5, plan_ms: 1 },
  };
}

/** A closed log of SIZE entries; returns its head. */
function makeLog(): AuditHead {
  const l = AuditLog.open(file);
  l.appendMany(Array.from({ length: SIZE }, (_, i) => input(i)));
  const head = l.head();
  l.close();
  return head;
}

function withFile(fn: (db: Database.Database) => void): void {
  const db = new Database(file);
  try {
    fn(db);
  } finally {
    db.close();
  }
}

function open(): AuditLog {
  log = AuditLog.open(file);
  return log;
}

describe('parallel verify', () => {
  it('has the compiled worker it needs (the test setup builds dist/)', () => {
    expect(workerScript()).toBeDefined();
  });

  it('accepts an intact log on 3 threads, every chunk walked once, none again', () => {
    makeLog();
    const { response, run } = open().verifyRun(undefined, PARALLEL);
    expect(response).toMatchObject({ ok: true, size: SIZE });
    expect(run).toMatchObject({ threads: 3, chunks: 7, findings: [], rewalked: 0 });
    expect(open().verifyRun(undefined, DYNAMIC).run.threads).toBe(2);
  });

  it('names an entry corrupted at a range boundary (last of one chunk, first of the next)', () => {
    makeLog();
    withFile((db) =>
      db.prepare("UPDATE entries SET body = replace(body, 'plain', 'plaim') WHERE seq = 48").run(),
    );
    const v = open().verifyRun(undefined, PARALLEL);
    expect(v.response.firstBad).toEqual({
      seq: 48,
      reason: 'entry 48: stored leaf does not match its content',
    });
    withFile((db) =>
      db.prepare("UPDATE entries SET body = replace(body, 'plain', 'plaim') WHERE seq = 47").run(),
    );
    expect(open().verifyRun(undefined, PARALLEL).response.firstBad?.seq).toBe(47);
  });

  it('names a gap at the end of a chunk: the next chunk is walked again from where the last one ended', () => {
    makeLog();
    withFile((db) => db.prepare('DELETE FROM entries WHERE seq IN (46, 47)').run());
    const { response, run } = open().verifyRun(undefined, PARALLEL);
    expect(response.firstBad).toEqual({ seq: 46, reason: 'entry 46 missing (the next stored entry is 48)' });
    expect(run.rewalked).toBeGreaterThanOrEqual(1);
  });

  it('names the lower of two bad entries found by two different workers', () => {
    makeLog();
    withFile((db) => {
      // seq 40 is in chunk 2 (worker 2), seq 70 in chunk 4 (worker 1)
      db.prepare("UPDATE entries SET body = replace(body, 'plain', 'plaim') WHERE seq IN (40, 70)").run();
    });
    const { response, run } = open().verifyRun(undefined, PARALLEL);
    expect(run.findings).toEqual([
      { chunk: 2, thread: 2, seq: 40 },
      { chunk: 4, thread: 1, seq: 70 },
    ]);
    expect(response.firstBad).toEqual({
      seq: 40,
      reason: 'entry 40: stored leaf does not match its content',
    });
  });

  it('names the lower one when this thread and a worker both find one, whichever finishes first', () => {
    makeLog();
    // seq 20: chunk 1 (worker 1); seq 50: chunk 3 (this thread)
    withFile((db) => db.prepare("UPDATE entries SET kind = 'drift' WHERE seq IN (20, 50)").run());
    const { response, run } = open().verifyRun(undefined, PARALLEL);
    expect(run.findings.map((f) => [f.seq, f.thread])).toEqual([
      [20, 1],
      [50, 0],
    ]);
    expect(response.firstBad?.seq).toBe(20);
  });

  const corruptions: [string, (db: Database.Database) => void][] = [
    [
      'a body at the start of the log',
      (db) => db.prepare("UPDATE entries SET body = body || ' ' WHERE seq = 0").run(),
    ],
    [
      'a leaf in the middle of a chunk',
      (db) => db.prepare('UPDATE entries SET leaf = zeroblob(32) WHERE seq = 37').run(),
    ],
    [
      'a leaf of the wrong length',
      (db) => db.prepare('UPDATE entries SET leaf = zeroblob(31) WHERE seq = 64').run(),
    ],
    [
      'the Merkle nodes of a row that closes a chunk',
      (db) => db.prepare('UPDATE entries SET nodes = NULL WHERE seq = 63').run(),
    ],
    ['nodes stored as text', (db) => db.prepare("UPDATE entries SET nodes = 'x' WHERE seq = 31").run()],
    ['the first entry of a chunk deleted', (db) => db.prepare('DELETE FROM entries WHERE seq = 32').run()],
    ['the last entry deleted', (db) => db.prepare('DELETE FROM entries WHERE seq = 99').run()],
    [
      'two entries swapped across a boundary',
      (db) => {
        db.prepare('UPDATE entries SET seq = -1 WHERE seq = 15').run();
        db.prepare('UPDATE entries SET seq = 15 WHERE seq = 16').run();
        db.prepare('UPDATE entries SET seq = 16 WHERE seq = -1').run();
      },
    ],
    [
      'an entry with a negative seq',
      (db) => db.prepare("INSERT INTO entries(seq, body, leaf) VALUES (-5, '{}', zeroblob(32))").run(),
    ],
    ['an index column', (db) => db.prepare("UPDATE entries SET summary = 'x' WHERE seq = 81").run()],
    [
      'an actor uid stored as text',
      (db) => db.prepare("UPDATE entries SET actor_uid = 'root' WHERE seq = 17").run(),
    ],
    [
      'a body that is JSON but not canonical',
      (db) =>
        db.prepare(`UPDATE entries SET body = replace(body, '{"actor"', '{ "actor"') WHERE seq = 90`).run(),
    ],
    [
      'an issued checkpoint whose root no longer matches',
      (db) =>
        db
          .prepare(
            "INSERT INTO checkpoints(size, root, note, time) VALUES (40, zeroblob(32), 'n', '2026-01-01T00:00:00.000Z')",
          )
          .run(),
    ],
    [
      'an issued checkpoint larger than the log',
      (db) =>
        db
          .prepare(
            "INSERT INTO checkpoints(size, root, note, time) VALUES (120, zeroblob(32), 'n', '2026-01-01T00:00:00.000Z')",
          )
          .run(),
    ],
  ];

  it.each(corruptions)(
    'gives the one-thread answer for %s, on 3 threads and dynamically on 2',
    (_name, corrupt) => {
      const head = makeLog();
      withFile(corrupt);
      const l = open();
      for (const checkpoint of [undefined, head, { size: 50, head: head.head }]) {
        const one = l.verifyRun(checkpoint, { threads: 1 });
        expect(one.run.threads).toBe(1);
        expect(l.verifyRun(checkpoint, PARALLEL).response).toEqual(one.response);
        expect(l.verifyRun(checkpoint, DYNAMIC).response).toEqual(one.response);
      }
    },
  );
});
