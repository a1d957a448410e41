import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { canonicalJson } from '../../main/common/canonical/jcs.js';
import { leafHash } from '../../main/common/transparency/rfc6962.js';
import type { AuditVerifyResponse } from '../../main/common/contract/index.js';
import { TestSandbox, writeDocument } from '../support/sandbox.js';

// An attacker with write access to the core's SQLite file, while the core runs: each kind of
// tampering is detected by `op-dbus audit verify`, the last ones only against a checkpoint saved before.
let sb: TestSandbox;
let docs: string;
let checkpoint: string;

beforeAll(async () => {
  sb = await TestSandbox.start();
  docs = join(sb.dir, '..', 'docs');
  for (const loc of ['One', 'Two', 'Three']) {
    expect(
      sb.cli([
        'apply',
        writeDocument(
          docs,
          'd.json',
          JSON.stringify({ version: 1, plugins: { hostname: { location: loc } } }),
        ),
        '--yes',
      ]).code,
    ).toBe(0);
  }
  const head = sb.cli(['audit', 'verify', '--json']);
  expect(head.code).toBe(0);
  checkpoint = join(docs, 'checkpoint.json');
  writeFileSync(checkpoint, head.stdout);
});
afterAll(async () => {
  await sb?.stop();
});

function attacker<T>(fn: (db: Database.Database) => T): T {
  const db = new Database(join(sb.dataDir, 'audit', 'audit.sqlite'));
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function verify(withCheckpoint: boolean): { code: number | null; r: AuditVerifyResponse; stderr: string } {
  const out = sb.cli(['audit', 'verify', '--json', ...(withCheckpoint ? ['--checkpoint', checkpoint] : [])]);
  return { code: out.code, r: JSON.parse(out.stdout) as AuditVerifyResponse, stderr: out.stderr };
}

describe('tampering with the audit log', () => {
  it('deleting the last entry is caught against the checkpoint', () => {
    const size = attacker((db) => (db.prepare('SELECT count(*) AS n FROM entries').get() as { n: number }).n);
    attacker((db) => db.prepare('DELETE FROM entries WHERE seq = ?').run(size - 1));
    expect(verify(false).code).toBe(0); // a shorter log is internally consistent
    const v = verify(true);
    expect(v.code).toBe(1);
    expect(v.r.firstBad?.seq).toBe(size - 1);
    expect(v.r.firstBad?.reason).toMatch(/missing/);
  });

  it('rewriting an entry and re-hashing everything after it is caught against the checkpoint', () => {
    const target = 2;
    attacker((db) => {
      const rows = db.prepare('SELECT seq, body FROM entries WHERE seq >= ? ORDER BY seq').all(target) as {
        seq: number;
        body: string;
      }[];
      let prev = (
        db.prepare('SELECT hex(leaf) AS h FROM entries WHERE seq = ?').get(target - 1) as { h: string }
      ).h.toLowerCase();
      for (const row of rows) {
        const entry = JSON.parse(row.body) as Record<string, unknown>;
        if (row.seq === target) entry['summary'] = 'nothing happened here';
        entry['prev'] = prev;
        const body = canonicalJson(entry);
        const leaf = leafHash(Buffer.from(body, 'utf8'));
        db.prepare('UPDATE entries SET body = ?, leaf = ?, summary = ? WHERE seq = ?').run(
          body,
          leaf,
          entry['summary'],
          row.seq,
        );
        prev = leaf.toString('hex');
      }
    });
    // The Merkle nodes stored with each row (and the core's own signed checkpoints) no longer match.
    const alone = verify(false);
    expect(alone.code).toBe(1);
    expect(alone.r.firstBad?.reason).toMatch(/Merkle tree nodes do not match|checkpoint signed at/);
    const v = verify(true);
    expect(v.code).toBe(1);
    expect(v.r.firstBad?.reason).toMatch(/differs from the checkpoint|rewritten|missing/);
  });

  it('changing one stored entry is named without any checkpoint', () => {
    attacker((db) => {
      const row = db.prepare('SELECT body FROM entries WHERE seq = 1').get() as { body: string };
      const entry = JSON.parse(row.body) as Record<string, unknown>;
      entry['summary'] = 'approve nothing';
      db.prepare('UPDATE entries SET body = ?, summary = ? WHERE seq = 1').run(
        canonicalJson(entry),
        entry['summary'],
      );
    });
    const v = verify(false);
    expect(v.code).toBe(1);
    expect(v.r.firstBad?.seq).toBe(1);
    expect(v.stderr).toBe('');
    expect(sb.cli(['audit', 'verify']).stdout).toMatch(/DAMAGED at entry 1/);
  });
});
