import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditListEntry } from '../../common/contract/payloads.js';
import { AuditLog, type AppendInput, type AuditLogOptions } from './log.js';

// appendQueued with the writer thread (the compiled worker in dist/, which test/global-setup builds):
// this thread builds batches while that one commits them. Real SQLite files, real failures.
let dir: string;
let file: string;
let logs: AuditLog[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-pipeline-'));
  file = path.join(dir, 'audit.sqlite');
});
afterEach(() => {
  for (const l of logs) {
    try {
      l.close();
    } catch {
      // closed by the test
    }
  }
  logs = [];
  fs.rmSync(dir, { recursive: true, force: true });
});

function open(opts: AuditLogOptions = {}, at = file): AuditLog {
  const l = AuditLog.open(at, { synchronous: 'NORMAL', ...opts });
  logs.push(l);
  return l;
}
const input = (i: number, over: Partial<AppendInput> = {}): AppendInput => ({
  kind: 'apply',
  actor: { uid: 1000, subject: ':1.42' },
  plugin: 'hostname',
  summary: `entry ${i}`,
  durations: { ms: i },
  ...over,
});
const summaries = (l: AuditLog): string[] =>
  l
    .list({ limit: 1000 })
    .entries.map((e) => e.summary)
    .reverse();

describe('appendQueued on the writer thread', () => {
  it('keeps call order across interleaved appendQueued and append, and the log verifies', async () => {
    const l = open({ maxBatch: 4, groupWindowMs: 1 });
    expect(l.writesOffThread).toBe(true);
    const pending: Promise<AuditListEntry>[] = [];
    const order: string[] = [];
    for (let i = 0; i < 60; i++) {
      order.push(`entry ${i}`);
      // every seventh is synchronous: it commits all queued (and in flight) before itself
      if (i % 7 === 6) expect(l.append(input(i)).summary).toBe(`entry ${i}`);
      else pending.push(l.appendQueued(input(i, i % 5 === 0 ? { payload: { n: i } } : {})));
    }
    const written = await Promise.all(pending);
    expect(summaries(l)).toEqual(order);
    // each promise has the entry at its seq
    for (const e of written) expect(order[e.seq]).toBe(e.summary);
    expect(l.payload(written[0]?.payload_hash as string)).toEqual({ n: 0 });
    const v = l.verify();
    expect(v.ok).toBe(true);
    expect(v.size).toBe(60);
  });

  it('carries non-ASCII and long texts through the batch intact', async () => {
    const l = open({ maxBatch: 64 });
    const texts = Array.from({ length: 64 }, (_, i) =>
      i % 2 === 0 ? `naïve café ${i} 🚀 日本語` : '界'.repeat(300 + i),
    );
    const written = await Promise.all(
      texts.map((t, i) => l.appendQueued(input(i, { summary: t, plugin: t.slice(0, 5) }))),
    );
    expect(written.map((e) => e.seq)).toEqual(texts.map((_, i) => i));
    const listed = l.list({ limit: 100 }).entries.reverse();
    expect(listed.map((e) => e.summary)).toEqual(written.map((e) => e.summary));
    expect(listed.map((e) => e.plugin)).toEqual(texts.map((t) => t.slice(0, 5)));
    expect(l.list({ text: '日本語' }).entries).toHaveLength(32);
    expect(l.verify()).toMatchObject({ ok: true, size: 64 });
  });

  it('a read sees every batch already handed to the writer', () => {
    const l = open({ maxBatch: 5 });
    const pending = Array.from({ length: 20 }, (_, i) => l.appendQueued(input(i)));
    // 20 = four full batches, posted at once; list waits for them without a flush
    expect(l.head().size).toBe(20);
    expect(l.treeHead().size).toBe(20);
    return Promise.all(pending);
  });

  it('rejects a failed batch and every batch posted after it, leaves no hole, and goes on', async () => {
    const l = open({ maxBatch: 8, groupWindowMs: 1 });
    expect(l.append(input(-1)).seq).toBe(0);
    // A second connection adds a trigger that fails the insert of one chosen entry.
    const other = new Database(file);
    other.exec(`CREATE TRIGGER fail_one BEFORE INSERT ON entries WHEN NEW.summary = 'entry 20'
      BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`);
    other.close();
    // 40 appends, 8 per batch: four are posted before any answer is read (entries 0..31); the first answer
    // posts the fifth (32..39), so it is in flight too when the third batch fails.
    const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => l.appendQueued(input(i))));
    const reason = (i: number): string => {
      const r = results[i];
      return r?.status === 'rejected' ? String((r.reason as Error).message) : 'fulfilled';
    };
    for (let i = 0; i < 16; i++)
      expect(results[i]).toMatchObject({ status: 'fulfilled', value: { seq: i + 1 } });
    for (let i = 16; i < 24; i++) expect(reason(i)).toMatch(/entries 17\.\.24 failed: .*disk on fire/);
    for (let i = 24; i < 32; i++)
      expect(reason(i)).toMatch(/entries 25\.\.32 refused: an earlier batch failed/);
    for (let i = 32; i < 40; i++)
      expect(reason(i)).toMatch(/entries 33\.\.40 refused: an earlier batch failed/);
    expect(l.verify()).toMatchObject({ ok: true, size: 17 });
    // later appends continue from the table: right after entry 15
    const later = await Promise.all(Array.from({ length: 8 }, (_, i) => l.appendQueued(input(100 + i))));
    expect(later.map((e) => e.seq)).toEqual([17, 18, 19, 20, 21, 22, 23, 24]);
    expect(l.append(input(200)).seq).toBe(25);
    expect(summaries(l).slice(15, 18)).toEqual(['entry 14', 'entry 15', 'entry 100']);
    expect(l.verify()).toMatchObject({ ok: true, size: 26 });
    expect(l.writesOffThread).toBe(true);
  });

  it('refuses a batch when another connection wrote behind its back, then chains onto that entry', async () => {
    // The foreign entry: a valid entry 0 made in another log file.
    const scratch = open({ writerThread: false }, path.join(dir, 'scratch.sqlite'));
    scratch.append(input(99, { summary: 'written elsewhere' }));
    scratch.close();
    const l = open({ maxBatch: 8 });
    const other = new Database(file);
    other.exec(`ATTACH '${path.join(dir, 'scratch.sqlite')}' AS s`);
    other.exec('BEGIN IMMEDIATE'); // the writer thread waits for this lock
    const pending = Array.from({ length: 8 }, (_, i) => l.appendQueued(input(i))); // posted at the 8th
    other.exec('INSERT INTO entries SELECT * FROM s.entries; COMMIT');
    other.close();
    const results = await Promise.allSettled(pending);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect(String((r as PromiseRejectedResult).reason)).toMatch(
        /entries 0\.\.7 failed: audit batch refused: .* but the log ends at entry 0/,
      );
    }
    const next = await Promise.all([l.appendQueued(input(8)), l.appendQueued(input(9))]);
    expect(next.map((e) => e.seq)).toEqual([1, 2]);
    expect(summaries(l)).toEqual(['written elsewhere', 'entry 8', 'entry 9']);
    expect(l.verify()).toMatchObject({ ok: true, size: 3 });
  });

  it('refuses a bad input alone, before it takes a seq; the rest of its batch is written', async () => {
    const l = open({ maxBatch: 3 });
    const results = await Promise.allSettled([
      l.appendQueued(input(0)),
      l.appendQueued(input(1, { durations: { x: Number.NaN } })),
      l.appendQueued(input(2)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[2] as PromiseFulfilledResult<AuditListEntry>).value.seq).toBe(1);
    expect(summaries(l)).toEqual(['entry 0', 'entry 2']);
    expect(l.verify().ok).toBe(true);
  });

  it('close() commits batches in flight and what is still queued, then ends the writer', async () => {
    const l = open({ maxBatch: 16, groupWindowMs: 1000 });
    // 16 batches of 16: four in flight, the rest queued; a last partial batch waits for its timer
    const pending = Array.from({ length: 16 * 16 + 5 }, (_, i) => l.appendQueued(input(i)));
    l.close();
    const written = await Promise.all(pending);
    expect(written.map((e) => e.seq)).toEqual(written.map((_, i) => i));
    const again = open({ writerThread: false });
    expect(again.verify()).toMatchObject({ ok: true, size: 16 * 16 + 5 });
    expect(summaries(again).slice(-1)).toEqual([`entry ${16 * 16 + 4}`]);
  });

  it('starts the writer thread on request before any append, and commits the first batch on it', async () => {
    const l = open();
    expect(l.writerRunning).toBe(false); // started lazily by default
    l.startWriterThread();
    expect(l.writerRunning).toBe(true);
    const written = await Promise.all([0, 1, 2].map((i) => l.appendQueued(input(i))));
    expect(written.map((e) => e.seq)).toEqual([0, 1, 2]);
    expect(l.writerRunning).toBe(true);
    l.close();
    expect(l.writerRunning).toBe(false);
    const inThread = open({ writerThread: false }, path.join(dir, 'other.sqlite'));
    inThread.startWriterThread(); // nothing to start
    expect(inThread.writerRunning).toBe(false);
  });

  it('falls back to this thread when the writer cannot open the log', async () => {
    const l = open({ maxBatch: 4 });
    l.append(input(0));
    // The log's connection keeps the file open; the writer thread opens it by name, and finds nothing.
    fs.renameSync(file, `${file}.moved`);
    const written = await Promise.all([1, 2, 3, 4, 5].map((i) => l.appendQueued(input(i))));
    expect(written.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(l.writesOffThread).toBe(false);
    expect(l.verify()).toMatchObject({ ok: true, size: 6 });
    fs.renameSync(`${file}.moved`, file); // SQLite will not checkpoint into a file that has moved
    l.close();
    const again = open({ writerThread: false });
    expect(summaries(again)).toEqual(['entry 0', 'entry 1', 'entry 2', 'entry 3', 'entry 4', 'entry 5']);
  });
});

describe('appendQueued on this thread (writerThread: false, as without a compiled worker)', () => {
  it('keeps call order, refuses a bad input alone, and a failing batch alone', async () => {
    const l = open({ writerThread: false, maxBatch: 4, groupWindowMs: 1 });
    expect(l.writesOffThread).toBe(false);
    const other = new Database(file);
    other.exec(`CREATE TRIGGER fail_one BEFORE INSERT ON entries WHEN NEW.summary = 'entry 5'
      BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`);
    other.close();
    const pending: Promise<AuditListEntry>[] = [];
    for (let i = 0; i < 12; i++) {
      if (i === 10) l.append(input(i));
      else pending.push(l.appendQueued(input(i, i === 1 ? { durations: { x: Number.NaN } } : {})));
    }
    const results = await Promise.allSettled(pending);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected', // bad input
      'fulfilled',
      'fulfilled',
      'rejected', // the batch of entries 4..7 holds entry 5
      'rejected',
      'rejected',
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    expect(summaries(l)).toEqual([
      'entry 0',
      'entry 2',
      'entry 3',
      'entry 8',
      'entry 9',
      'entry 10',
      'entry 11',
    ]);
    expect(l.verify()).toMatchObject({ ok: true, size: 7 });
  });
});
