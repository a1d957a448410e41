import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compress as zstdCompress, decompress as zstdDecompress } from 'zstd-napi';
import { canonicalJson, contentHash } from '../../common/canonical/jcs.js';
import { OpError } from '../../common/contract/errors.js';
import type { AuditEntry, AuditHead, AuditListEntry } from '../../common/contract/payloads.js';
import { type AppendInput, AuditLog, SUMMARY_MAX, ZERO_HASH } from './log.js';

const ENTRY_FIELDS = [
  'actor',
  'durations',
  'kind',
  'payload_hash',
  'plugin',
  'prev',
  'seq',
  'summary',
  'time',
];

let dir: string;
let file: string;
let log: AuditLog | undefined;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-log-test-'));
  file = path.join(dir, 'audit.db');
});

afterEach(() => {
  log?.close();
  log = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

function openLog(): AuditLog {
  log = AuditLog.open(file);
  return log;
}

function closeLog(): void {
  log?.close();
  log = undefined;
}

function input(i: number, over: Partial<AppendInput> = {}): AppendInput {
  return {
    kind: 'apply',
    actor: { uid: 1000, subject: ':1.42', action: 'org.opdbus.apply' },
    plugin: 'hostname',
    summary: `entry ${i}: pretty_hostname changed`,
    durations: { apply: 12.5, plan: 1 },
    ...over,
  };
}

/** SHA-256(0x00 || body), computed here without the code under test. */
function expectedLeaf(body: string): string {
  return createHash('sha256')
    .update(Buffer.concat([Buffer.from([0]), Buffer.from(body, 'utf8')]))
    .digest('hex');
}

type RawRow = {
  seq: number;
  body: string;
  leaf: Buffer;
  time: string;
  kind: string;
  plugin: string | null;
  actor_uid: number | null;
  summary: string;
};

/** Opens the file with a separate connection, as an attacker (or an auditor) with file access would. */
function withFile<T>(fn: (db: Database.Database) => T): T {
  const db = new Database(file);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function rawRows(): RawRow[] {
  return withFile((db) => db.prepare<[], RawRow>('SELECT * FROM entries ORDER BY seq').all());
}

/** Rewrites one stored entry the way a careful attacker would: new canonical body, new leaf, matching index columns. */
function rewriteEntry(db: Database.Database, seq: number, change: (e: AuditEntry) => void): string {
  const row = db.prepare<[number], { body: string }>('SELECT body FROM entries WHERE seq = ?').get(seq);
  if (row === undefined) throw new Error(`no entry ${seq}`);
  const entry = JSON.parse(row.body) as AuditEntry;
  change(entry);
  const body = canonicalJson(entry);
  const leaf = expectedLeaf(body);
  db.prepare(
    'UPDATE entries SET body = ?, leaf = ?, time = ?, kind = ?, plugin = ?, actor_uid = ?, summary = ? WHERE seq = ?',
  ).run(
    body,
    Buffer.from(leaf, 'hex'),
    entry.time,
    entry.kind,
    entry.plugin,
    entry.actor.uid,
    entry.summary,
    seq,
  );
  rebuildNodes(db);
  return leaf;
}

/** MTH of leaf hashes (RFC 6962 section 2.1), naively, without the code under test. */
function naiveRoot(leaves: Buffer[]): Buffer {
  if (leaves.length === 1) return leaves[0] as Buffer;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return createHash('sha256')
    .update(Buffer.from([1]))
    .update(naiveRoot(leaves.slice(0, k)))
    .update(naiveRoot(leaves.slice(k)))
    .digest();
}

/** Recomputes every row's Merkle nodes from the stored leaves, as an attacker covering their tracks would. */
function rebuildNodes(db: Database.Database): void {
  const leaves = db
    .prepare<[], { leaf: Buffer }>('SELECT leaf FROM entries ORDER BY seq')
    .all()
    .map((r) => r.leaf);
  const set = db.prepare<[Buffer | null, number]>('UPDATE entries SET nodes = ? WHERE seq = ?');
  leaves.forEach((_, i) => {
    const nodes: Buffer[] = [];
    for (let width = 2; (i + 1) % width === 0; width *= 2)
      nodes.push(naiveRoot(leaves.slice(i + 1 - width, i + 1)));
    set.run(nodes.length === 0 ? null : Buffer.concat(nodes), i);
  });
}

/** A log of `n` entries, closed, and the head it had (a checkpoint saved elsewhere). */
function makeClosedLog(n: number): { entries: AuditListEntry[]; checkpoint: AuditHead } {
  const l = openLog();
  const entries = Array.from({ length: n }, (_, i) => l.append(input(i)));
  const checkpoint = l.head();
  closeLog();
  return { entries, checkpoint };
}

describe('AuditLog append', () => {
  it('assigns consecutive seq from 0, chains prev to the previous leaf, and hashes the canonical body', () => {
    const l = openLog();
    const before = Date.now();
    const written = [0, 1, 2, 3, 4].map((i) => l.append(input(i, { kind: i % 2 === 0 ? 'plan' : 'apply' })));
    const after = Date.now();
    expect(written.map((e) => e.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(written[0]?.prev).toBe('0'.repeat(64));
    for (let i = 1; i < written.length; i++) expect(written[i]?.prev).toBe(written[i - 1]?.leaf);

    const rows = rawRows();
    expect(rows).toHaveLength(5);
    rows.forEach((row, i) => {
      const e = written[i] as AuditListEntry;
      expect(row.seq).toBe(i);
      // The leaf is SHA-256(0x00 || body), both as returned and as stored.
      expect(e.leaf).toBe(expectedLeaf(row.body));
      expect(row.leaf.toString('hex')).toBe(e.leaf);
      // The body is the canonical JSON of exactly the AuditEntry fields.
      const { leaf: _leaf, ...entry } = e;
      expect(row.body).toBe(canonicalJson(entry));
      expect(Object.keys(JSON.parse(row.body) as object)).toEqual(ENTRY_FIELDS);
      expect(
        row.body.startsWith('{"actor":{"action":"org.opdbus.apply","subject":":1.42","uid":1000},'),
      ).toBe(true);
      expect(row.body).not.toMatch(/\s"|":\s/);
      // Index columns agree with the body.
      expect([row.time, row.kind, row.plugin, row.actor_uid, row.summary]).toEqual([
        e.time,
        e.kind,
        e.plugin,
        e.actor.uid,
        e.summary,
      ]);
      expect(new Date(e.time).toISOString()).toBe(e.time);
      expect(Date.parse(e.time)).toBeGreaterThanOrEqual(before);
      expect(Date.parse(e.time)).toBeLessThanOrEqual(after);
    });
    expect(written[3]).toMatchObject({
      kind: 'apply',
      actor: { uid: 1000, subject: ':1.42', action: 'org.opdbus.apply' },
      plugin: 'hostname',
      summary: 'entry 3: pretty_hostname changed',
      payload_hash: null,
      durations: { apply: 12.5, plan: 1 },
    });
  });

  it('keeps only the AuditEntry fields of the actor and defaults durations to null', () => {
    const l = openLog();
    const actor = { uid: null, subject: 'core', extra: 'dropped' };
    const e = l.append({ kind: 'recovery', actor, plugin: null, summary: 'started' });
    expect(e.actor).toEqual({ uid: null, subject: 'core' });
    expect(e.durations).toBeNull();
    expect(e.plugin).toBeNull();
    const row = rawRows()[0] as RawRow;
    expect(row.actor_uid).toBeNull();
    expect(row.plugin).toBeNull();
    expect(row.body).toBe(
      `{"actor":{"subject":"core","uid":null},"durations":null,"kind":"recovery","payload_hash":null,"plugin":null,` +
        `"prev":"${ZERO_HASH}","seq":0,"summary":"started","time":"${e.time}"}`,
    );
  });

  it('makes summaries one line, capped, and well-formed', () => {
    const l = openLog();
    expect(l.append(input(0, { summary: 'line one\nline two\r\nline three\rfour' })).summary).toBe(
      'line one line two line three four',
    );
    const long = l.append(input(1, { summary: 'x'.repeat(5000) })).summary;
    expect(long.length).toBeLessThanOrEqual(SUMMARY_MAX);
    expect(long.length).toBeGreaterThan(SUMMARY_MAX - 5);
    expect(long.startsWith('xxxxxxxx')).toBe(true);
    // A surrogate pair straddling the cap is not cut in half.
    const emoji = l.append(input(2, { summary: `${'y'.repeat(SUMMARY_MAX - 2)}😀😀😀` })).summary;
    expect(emoji).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
    expect(l.append(input(3, { summary: 'a\uD800b' })).summary).toBe('a\uFFFDb');
    expect(l.verify().ok).toBe(true);
  });

  it("records a relay's client label in the actor, canonical and verified (native walk and TypeScript alike)", () => {
    const l = openLog();
    const actor = {
      uid: 1000,
      subject: ':1.7',
      action: 'org.opdbus.plan',
      client: 'console session ab12 \u001b[2J',
    };
    const e = l.append(input(0, { actor }));
    expect(e.actor).toEqual({ ...actor, client: 'console session ab12 \\x1b[2J' });
    l.append(input(1, { actor: { uid: 0, subject: ':1.8', client: 'no action' } }));
    l.append(input(2));
    for (const row of rawRows()) expect(row.body).toBe(canonicalJson(JSON.parse(row.body)));
    expect(l.verify()).toMatchObject({ ok: true, size: 3 });
    expect(l.verifyRun(undefined, { native: false }).response).toMatchObject({ ok: true, size: 3 });
  });

  it('never stores a character that acts on a terminal: ESC, BEL, CR, C1 and bidi controls become visible escapes', () => {
    const l = openLog();
    const summary = 'pretty_hostname \u001b]0;owned\u0007 \u001b[2Jok\rFAILED \u009b31m user \u202eevil';
    const stored = l.append(input(0, { summary })).summary;
    expect(stored).toBe('pretty_hostname \\x1b]0;owned\\x07 \\x1b[2Jok FAILED \\x9b31m user \\u202eevil');
    expect(stored).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(l.list({}).entries[0]?.summary).toBe(stored);
    expect(l.verify().ok).toBe(true);
  });

  it('stores payloads by content hash, once', () => {
    const l = openLog();
    const a = l.append(input(0, { payload: { b: [1, 2], a: 'x' } }));
    const b = l.append(input(1, { payload: { a: 'x', b: [1, 2] } }));
    const c = l.append(input(2, { payload: { a: 'y' } }));
    const none = l.append(input(3));
    expect(a.payload_hash).toBe(contentHash({ a: 'x', b: [1, 2] }));
    expect(b.payload_hash).toBe(a.payload_hash);
    expect(c.payload_hash).toBe(contentHash({ a: 'y' }));
    expect(none.payload_hash).toBeNull();
    expect(
      withFile((db) => db.prepare('SELECT hash, bytes FROM payloads ORDER BY bytes DESC').all()),
    ).toEqual([
      { hash: a.payload_hash, bytes: '{"a":"x","b":[1,2]}'.length },
      { hash: c.payload_hash, bytes: '{"a":"y"}'.length },
    ]);
    // One zstd file per content hash, in <payloads>/ab/cdef….zst, decompressing to the canonical text.
    const fileOf = (h: string) => path.join(dir, 'payloads', h.slice(0, 2), `${h.slice(2)}.zst`);
    expect(zstdDecompress(fs.readFileSync(fileOf(a.payload_hash as string))).toString()).toBe(
      '{"a":"x","b":[1,2]}',
    );
    expect(
      fs
        .readdirSync(path.join(dir, 'payloads'))
        .flatMap((d) => fs.readdirSync(path.join(dir, 'payloads', d))),
    ).toHaveLength(2);
    expect(l.payload(a.payload_hash as string)).toEqual({ a: 'x', b: [1, 2] });
    expect(l.payload('0'.repeat(64))).toBeUndefined();
  });

  it('refuses a payload whose stored content no longer matches its hash', () => {
    const e = openLog().append(input(0, { payload: { a: 1 } }));
    closeLog();
    const h = e.payload_hash as string;
    fs.writeFileSync(
      path.join(dir, 'payloads', h.slice(0, 2), `${h.slice(2)}.zst`),
      zstdCompress(Buffer.from('{"a":2}')),
    );
    const l = openLog();
    expect(() => l.payload(e.payload_hash as string)).toThrow(
      expect.objectContaining({ code: 'AuditCorrupt' }) as Error,
    );
  });

  it('appendMany writes consecutive, chained entries in one transaction: all or none', () => {
    const l = openLog();
    l.append(input(0));
    const batch = l.appendMany([input(1), input(2), input(3)]);
    expect(batch.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(batch[0]?.prev).toBe(l.list({ limit: 1, beforeSeq: 1 }).entries[0]?.leaf);
    expect(batch[1]?.prev).toBe(batch[0]?.leaf);
    expect(batch[2]?.prev).toBe(batch[1]?.leaf);
    const head = l.head();

    // The third input is invalid: the first two must not be written either.
    const bad = input(6, { durations: { apply: Number.NaN } });
    let thrown: unknown;
    try {
      l.appendMany([input(4), input(5), bad]);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(OpError);
    expect((thrown as OpError).code).toBe('InvalidArgument');
    expect(l.head()).toEqual(head);
    expect(rawRows()).toHaveLength(4);
    expect(l.appendMany([])).toEqual([]);
    expect(l.append(input(4)).seq).toBe(4);
    expect(l.verify().ok).toBe(true);
  });

  it('continues the chain after the file is closed and reopened', () => {
    const first = openLog().appendMany([input(0), input(1), input(2)]);
    closeLog();
    const l = openLog();
    expect(l.head()).toEqual({ size: 3, head: first[2]?.leaf });
    const next = l.append(input(3));
    expect(next.seq).toBe(3);
    expect(next.prev).toBe(first[2]?.leaf);
    expect(l.verify()).toEqual({ ok: true, size: 4, head: next.leaf });
    closeLog();
    withFile((db) => {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get()).toBe('2');
    });
  });

  it('refuses a file with another schema version', () => {
    openLog();
    closeLog();
    withFile((db) => db.prepare("UPDATE meta SET value = '3' WHERE key = 'schema_version'").run());
    expect(() => AuditLog.open(file)).toThrow(expect.objectContaining({ code: 'AuditCorrupt' }) as Error);
  });
});

describe('AuditLog list and head', () => {
  it('head is 0 and 64 zeros when empty, then the size and last leaf', () => {
    const l = openLog();
    expect(l.head()).toEqual({ size: 0, head: ZERO_HASH });
    expect(l.list({})).toEqual({ entries: [], size: 0 });
    l.append(input(0));
    const last = l.append(input(1));
    expect(l.head()).toEqual({ size: 2, head: last.leaf });
  });

  it('lists newest first, 100 by default, and pages with beforeSeq', () => {
    const l = openLog();
    const written: AuditListEntry[] = [];
    for (let i = 0; i < 150; i += 50)
      written.push(...l.appendMany(Array.from({ length: 50 }, (_, j) => input(i + j))));
    const page1 = l.list({});
    expect(page1.size).toBe(150);
    expect(page1.entries.map((e) => e.seq)).toEqual(Array.from({ length: 100 }, (_, i) => 149 - i));
    expect(page1.entries[0]).toEqual(written[149]);
    expect(page1.entries[99]).toEqual(written[50]);
    const page2 = l.list({ beforeSeq: 50 });
    expect(page2.entries.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => 49 - i));
    expect(page2.entries).toEqual(written.slice(0, 50).reverse());
    expect(l.list({ limit: 3, beforeSeq: 20 }).entries.map((e) => e.seq)).toEqual([19, 18, 17]);
    expect(l.list({ beforeSeq: 0 }).entries).toEqual([]);
    expect(() => l.list({ limit: 0 })).toThrow(expect.objectContaining({ code: 'InvalidArgument' }) as Error);
  });

  it('filters by kind, plugin and summary text (case-insensitive, wildcards taken literally)', () => {
    const l = openLog();
    const specs: [AppendInput['kind'], string | null, string][] = [
      ['plan', 'hostname', '100% done'],
      ['apply', 'hostname', '100 percent done'],
      ['apply', 'network', 'renamed a_b'],
      ['plan', 'network', 'renamed axb'],
      ['query', null, 'Über alles'],
      ['drift', 'systemd', 'path C:\\temp found'],
      ['drift', 'systemd', 'path C:xtemp found'],
    ];
    specs.forEach(([kind, plugin, summary], i) => l.append(input(i, { kind, plugin, summary })));
    const seqs = (req: Parameters<AuditLog['list']>[0]) => l.list(req).entries.map((e) => e.seq);

    expect(seqs({ kind: 'plan' })).toEqual([3, 0]);
    expect(seqs({ plugin: 'network' })).toEqual([3, 2]);
    expect(seqs({ kind: 'apply', plugin: 'hostname' })).toEqual([1]);
    expect(seqs({ text: '100%' })).toEqual([0]);
    expect(seqs({ text: 'a_b' })).toEqual([2]);
    expect(seqs({ text: 'C:\\temp' })).toEqual([5]);
    expect(seqs({ text: 'DONE' })).toEqual([1, 0]);
    expect(seqs({ text: 'über' })).toEqual([4]);
    expect(seqs({ text: 'ÜBER ALLES' })).toEqual([4]);
    expect(seqs({ text: 'done', kind: 'apply' })).toEqual([1]);
    expect(seqs({ text: 'done', beforeSeq: 1 })).toEqual([0]);
    expect(seqs({ text: 'nothing like this' })).toEqual([]);
    // size is the whole log, not the filtered count.
    expect(l.list({ kind: 'plan' }).size).toBe(7);
  });
});

describe('AuditLog verify', () => {
  it('accepts an intact log, with and without a checkpoint, and an empty one', () => {
    const l = openLog();
    expect(l.verify()).toEqual({ ok: true, size: 0, head: ZERO_HASH });
    l.append(input(0));
    const early = l.head();
    l.appendMany([input(1), input(2)]);
    const now = l.head();
    expect(l.verify()).toEqual({ ok: true, ...now });
    expect(l.verify(early)).toEqual({ ok: true, ...now });
    expect(l.verify(now)).toEqual({ ok: true, ...now });
    expect(l.verify({ size: 0, head: ZERO_HASH })).toEqual({ ok: true, ...now });
    expect(() => l.verify({ size: 1, head: 'nothex' })).toThrow(
      expect.objectContaining({ code: 'InvalidArgument' }) as Error,
    );
  });

  it('does not mistake canonical bodies with awkward content for non-canonical ones', () => {
    const l = openLog();
    l.append(input(0, { durations: { '10': 1, '9': 2, b: 0.1, a: 1e21, é: 3, Z: -5, '': 0 } }));
    l.append(input(1, { summary: 'quote " backslash \\ literal \\ud800 tab \t ctl \u0001 emoji 😀 ñ' }));
    l.append(input(2, { actor: { uid: 0, subject: 'sübject \u2028', action: 'a' }, plugin: 'plügin' }));
    l.append(input(3, { durations: {} }));
    expect(l.verify()).toMatchObject({ ok: true, size: 4 });
    for (const row of rawRows()) {
      expect(row.body).toBe(canonicalJson(JSON.parse(row.body)));
    }
  });

  it('(1) a changed body: names that entry (its leaf no longer matches)', () => {
    makeClosedLog(6);
    withFile((db) =>
      db.prepare("UPDATE entries SET body = replace(body, 'entry 3:', 'entry III:') WHERE seq = 3").run(),
    );
    const r = openLog().verify();
    expect(r.ok).toBe(false);
    expect(r.firstBad).toEqual({ seq: 3, reason: 'entry 3: stored leaf does not match its content' });
    expect(r.size).toBe(6);
  });

  it('(2) a changed body with a recomputed leaf: names the next entry, whose prev no longer matches', () => {
    const { checkpoint } = makeClosedLog(6);
    withFile((db) => rewriteEntry(db, 2, (e) => (e.summary = 'nothing happened')));
    const l = openLog();
    expect(l.verify().firstBad).toEqual({
      seq: 3,
      reason: "entry 3: prev does not match entry 2's leaf (chain broken)",
    });
    expect(l.verify(checkpoint).firstBad?.seq).toBe(3);
  });

  it('(2) the same on the LAST entry: consistent on its own, caught only by the checkpoint', () => {
    const { checkpoint } = makeClosedLog(6);
    const newLeaf = withFile((db) => rewriteEntry(db, 5, (e) => (e.summary = 'nothing happened')));
    const l = openLog();
    // No later entry links to it, so nothing inside the log can tell: this is what checkpoints are for.
    expect(l.verify()).toEqual({ ok: true, size: 6, head: newLeaf });
    expect(l.verify(checkpoint)).toEqual({
      ok: false,
      size: 6,
      head: newLeaf,
      firstBad: {
        seq: 5,
        reason:
          'entry 5: differs from the checkpoint saved earlier: history at or before this entry was rewritten',
      },
    });
  });

  it('(3) the last entry deleted: caught against a checkpoint saved before', () => {
    const { entries, checkpoint } = makeClosedLog(6);
    withFile((db) => db.prepare('DELETE FROM entries WHERE seq = 5').run());
    const l = openLog();
    expect(l.verify()).toEqual({ ok: true, size: 5, head: entries[4]?.leaf });
    expect(l.verify(checkpoint)).toEqual({
      ok: false,
      size: 5,
      head: entries[4]?.leaf,
      firstBad: { seq: 5, reason: 'entry 5 missing: checkpoint has 6 entries, log has 5' },
    });
  });

  it('(3b) all entries deleted: the first missing one is named', () => {
    const { checkpoint } = makeClosedLog(3);
    withFile((db) => db.prepare('DELETE FROM entries').run());
    expect(openLog().verify(checkpoint)).toEqual({
      ok: false,
      size: 0,
      head: ZERO_HASH,
      firstBad: { seq: 0, reason: 'entry 0 missing: checkpoint has 3 entries, log has 0' },
    });
  });

  it('(4) a middle entry deleted: the gap is named', () => {
    makeClosedLog(6);
    withFile((db) => db.prepare('DELETE FROM entries WHERE seq = 2').run());
    const r = openLog().verify();
    expect(r.ok).toBe(false);
    expect(r.firstBad?.seq).toBe(2);
    expect(r.firstBad?.reason).toMatch(/^entry 2 missing/);
  });

  it('(4b) the first entry deleted: entry 0 is named', () => {
    makeClosedLog(3);
    withFile((db) => db.prepare('DELETE FROM entries WHERE seq = 0').run());
    const r = openLog().verify();
    expect(r.firstBad?.seq).toBe(0);
    expect(r.firstBad?.reason).toMatch(/^entry 0 missing/);
  });

  it('(5) an entry rewritten and everything after it re-hashed: only a checkpoint saved before catches it', () => {
    const l0 = openLog();
    l0.append(input(0));
    const atOne = l0.head();
    l0.appendMany([input(1), input(2)]);
    const atThree = l0.head();
    l0.appendMany([input(3), input(4), input(5)]);
    const atSix = l0.head();
    closeLog();

    withFile((db) => {
      let prev = rewriteEntry(db, 1, (e) => (e.summary = 'harmless'));
      for (let seq = 2; seq < 6; seq++) {
        const p = prev;
        prev = rewriteEntry(db, seq, (e) => (e.prev = p));
      }
    });
    const l = openLog();
    const ok = l.verify();
    expect(ok.ok).toBe(true);
    expect(ok.firstBad).toBeUndefined();
    expect(ok.head).not.toBe(atSix.head);
    const reason = 'differs from the checkpoint saved earlier: history at or before this entry was rewritten';
    expect(l.verify(atSix).firstBad).toEqual({ seq: 5, reason: `entry 5: ${reason}` });
    expect(l.verify(atThree).firstBad).toEqual({ seq: 2, reason: `entry 2: ${reason}` });
    // Entry 0 was not touched: a checkpoint from before the rewritten entry still holds.
    expect(l.verify(atOne).ok).toBe(true);
  });

  it('(6) two entries swapped (reordered): the first of them is named', () => {
    makeClosedLog(6);
    withFile((db) => {
      db.prepare('UPDATE entries SET seq = -1 WHERE seq = 2').run();
      db.prepare('UPDATE entries SET seq = 2 WHERE seq = 3').run();
      db.prepare('UPDATE entries SET seq = 3 WHERE seq = -1').run();
    });
    const r = openLog().verify();
    expect(r.firstBad?.seq).toBe(2);
    expect(r.firstBad?.reason).toContain('body says seq 3');
    expect(r.firstBad?.reason).toContain('out of order');
  });

  it('(7) an index column changed while the body is kept: named', () => {
    makeClosedLog(6);
    withFile((db) => db.prepare("UPDATE entries SET kind = 'approve' WHERE seq = 4").run());
    const l = openLog();
    expect(l.verify().firstBad).toEqual({
      seq: 4,
      reason: 'entry 4: index column kind ("approve") does not match the body ("apply")',
    });
    expect(l.list({ kind: 'approve' }).entries.map((e) => e.seq)).toEqual([4]);
  });

  it('(7b) other index columns are checked too', () => {
    makeClosedLog(6);
    withFile((db) => {
      db.prepare("UPDATE entries SET summary = 'innocent' WHERE seq = 3").run();
      db.prepare('UPDATE entries SET actor_uid = 0 WHERE seq = 5').run();
    });
    expect(openLog().verify().firstBad).toEqual({
      seq: 3,
      reason:
        'entry 3: index column summary ("innocent") does not match the body ("entry 3: pretty_hostname changed")',
    });
  });

  it('(7c) an index column of another type, or a value that shifts the others, is named like any change', () => {
    makeClosedLog(8);
    withFile((db) => {
      // The bytes of the body's uid as a BLOB (the column's affinity would turn the text '1000' back into 1000).
      db.prepare("UPDATE entries SET actor_uid = CAST('1000' AS BLOB) WHERE seq = 5").run();
      // kind swallows the next column's spelling and the others move up one: joined they spell the same.
      db.prepare(
        "UPDATE entries SET kind = 'apply' || char(31) || 'thostname', plugin = 1000, actor_uid = NULL WHERE seq = 2",
      ).run();
    });
    const l = openLog();
    expect(l.verify().firstBad).toEqual({
      seq: 2,
      reason: 'entry 2: index column kind ("apply\\u001fthostname") does not match the body ("apply")',
    });
    withFile((db) =>
      db
        .prepare("UPDATE entries SET kind = 'apply', plugin = 'hostname', actor_uid = 1000 WHERE seq = 2")
        .run(),
    );
    expect(l.verify().firstBad).toEqual({
      seq: 5,
      reason:
        'entry 5: index column actor_uid ({"type":"Buffer","data":[49,48,48,48]}) does not match the body (1000)',
    });
  });

  it('(7d) summaries with escapes and (escaped) control characters verify, and their index columns are still checked', () => {
    const l = openLog();
    l.append(input(0, { summary: 'say "hi" \\ to\u001fall\u0001' }));
    l.append(input(1, { summary: 'x\u001ftapply\u001fthostname' }));
    l.append(input(2, { plugin: null }));
    expect(l.verify()).toMatchObject({ ok: true, size: 3 });
    closeLog();
    withFile((db) => db.prepare("UPDATE entries SET summary = 'x' WHERE seq = 1").run());
    expect(openLog().verify().firstBad?.reason).toBe(
      'entry 1: index column summary ("x") does not match the body ("x\\\\x1ftapply\\\\x1fthostname")',
    );
  });

  it('(7e) an empty nodes blob where the row completes no node is named', () => {
    makeClosedLog(4);
    withFile((db) => db.prepare("UPDATE entries SET nodes = x'' WHERE seq = 2").run());
    expect(openLog().verify().firstBad).toEqual({
      seq: 2,
      reason: 'entry 2: stored Merkle tree nodes do not match the leaves (a leaf or a node was rewritten)',
    });
  });

  it('(8) a body with the same content but another key order (leaf recomputed): named as non-canonical', () => {
    makeClosedLog(6);
    withFile((db) => {
      const row = db.prepare<[], { body: string }>('SELECT body FROM entries WHERE seq = 3').get();
      const entry = JSON.parse(row?.body ?? '') as Record<string, unknown>;
      const reordered: Record<string, unknown> = {};
      for (const key of Object.keys(entry).reverse()) reordered[key] = entry[key];
      const body = JSON.stringify(reordered);
      expect(body).not.toBe(row?.body);
      expect(JSON.parse(body)).toEqual(entry);
      db.prepare('UPDATE entries SET body = ?, leaf = ? WHERE seq = 3').run(
        body,
        Buffer.from(expectedLeaf(body), 'hex'),
      );
    });
    expect(openLog().verify().firstBad).toEqual({
      seq: 3,
      reason: 'entry 3: body is not in canonical form (RFC 8785)',
    });
  });

  it('(8b) whitespace and a non-canonical number spelling are named too', () => {
    makeClosedLog(4);
    withFile((db) => {
      const set = db.prepare('UPDATE entries SET body = ?, leaf = ? WHERE seq = ?');
      for (const [seq, edit] of [
        [1, (b: string) => b.replace('"seq":1,', '"seq":1.0,')],
        [2, (b: string) => b.replace('"seq":2,', '"seq": 2,')],
      ] as const) {
        const body = edit(
          db.prepare<[number], string>('SELECT body FROM entries WHERE seq = ?').pluck().get(seq) ?? '',
        );
        set.run(body, Buffer.from(expectedLeaf(body), 'hex'), seq);
      }
    });
    expect(openLog().verify().firstBad).toEqual({
      seq: 1,
      reason: 'entry 1: body is not in canonical form (RFC 8785)',
    });
  });

  it('(8c) an escaped lone surrogate (which RFC 8785 forbids) is named as non-canonical', () => {
    makeClosedLog(3);
    withFile((db) => {
      const body = db.prepare<[], string>('SELECT body FROM entries WHERE seq = 1').pluck().get() ?? '';
      const lone = body.replace('"subject":":1.42"', '"subject":"\\ud800"');
      expect(lone).not.toBe(body);
      expect(JSON.stringify(JSON.parse(lone))).toBe(lone);
      db.prepare('UPDATE entries SET body = ?, leaf = ? WHERE seq = 1').run(
        lone,
        Buffer.from(expectedLeaf(lone), 'hex'),
      );
    });
    expect(openLog().verify().firstBad).toEqual({
      seq: 1,
      reason: 'entry 1: body is not in canonical form (RFC 8785)',
    });
  });

  it('names bodies that are not JSON or not AuditEntries', () => {
    makeClosedLog(4);
    withFile((db) => {
      db.prepare("UPDATE entries SET body = '{not json' WHERE seq = 2").run();
      db.prepare("UPDATE entries SET body = '{}' WHERE seq = 3").run();
    });
    expect(openLog().verify().firstBad).toEqual({ seq: 2, reason: 'entry 2: body is not valid JSON' });
    closeLog();
    withFile((db) => {
      const body = db.prepare<[], string>('SELECT body FROM entries WHERE seq = 1').pluck().get() ?? '';
      const extra = canonicalJson({ ...(JSON.parse(body) as object), extra: true });
      db.prepare('UPDATE entries SET body = ?, leaf = ? WHERE seq = 1').run(
        extra,
        Buffer.from(expectedLeaf(extra), 'hex'),
      );
    });
    expect(openLog().verify().firstBad).toEqual({
      seq: 1,
      reason: 'entry 1: body fails the AuditEntry schema: unknown field "extra"',
    });
  });

  it('names a first entry whose prev is not 64 zeros', () => {
    makeClosedLog(2);
    withFile((db) => rewriteEntry(db, 0, (e) => (e.prev = 'f'.repeat(64))));
    expect(openLog().verify().firstBad).toEqual({
      seq: 0,
      reason: 'entry 0: prev of the first entry is not 64 zeros (chain broken)',
    });
  });

  it('names the FIRST bad entry when several are bad', () => {
    makeClosedLog(8);
    withFile((db) => {
      db.prepare("UPDATE entries SET kind = 'plan' WHERE seq = 6").run();
      db.prepare("UPDATE entries SET body = replace(body, 'entry 4:', 'entry IV:') WHERE seq = 4").run();
      db.prepare('DELETE FROM entries WHERE seq = 7').run();
    });
    expect(openLog().verify().firstBad?.seq).toBe(4);
  });
});
