import { createHash } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { canonicalJson } from '../../main/common/canonical/jcs.js';

// A careful attacker, for test/core/audit-transparency.test.ts (the CLI's witness) and the console's
// e2e (the relay's witness): root on the host rewrites one entry in the core's SQLite file, then
// re-chains and re-hashes everything after it, Merkle nodes included, so that the log verifies on its own.

/** RFC 6962 tree head over leaf hashes, naively. */
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

/** Rewrites entry `target`'s summary and everything that hashes over it; optionally drops the core's own checkpoints. */
export function rewriteAuditHistory(
  dataDir: string,
  target: number,
  opts: { dropCheckpoints?: boolean } = {},
): void {
  const db = new Database(join(dataDir, 'audit', 'audit.sqlite'));
  try {
    const rows = db.prepare('SELECT seq, body FROM entries ORDER BY seq').all() as {
      seq: number;
      body: string;
    }[];
    if (rows.length <= target) throw new Error(`the log has ${rows.length} entries, none at ${target}`);
    let prev = '';
    const leaves: Buffer[] = [];
    for (const row of rows) {
      if (row.seq >= target) {
        const entry = JSON.parse(row.body) as Record<string, unknown>;
        if (row.seq === target) entry['summary'] = 'nothing happened here';
        else entry['prev'] = prev;
        const body = canonicalJson(entry);
        const leaf = createHash('sha256')
          .update(Buffer.concat([Buffer.from([0]), Buffer.from(body)]))
          .digest();
        db.prepare('UPDATE entries SET body = ?, leaf = ?, summary = ? WHERE seq = ?').run(
          body,
          leaf,
          entry['summary'],
          row.seq,
        );
      }
      const leaf = (db.prepare('SELECT leaf FROM entries WHERE seq = ?').get(row.seq) as { leaf: Buffer })
        .leaf;
      leaves.push(leaf);
      prev = leaf.toString('hex');
    }
    leaves.forEach((_, i) => {
      const nodes: Buffer[] = [];
      for (let w = 2; (i + 1) % w === 0; w *= 2) nodes.push(naiveRoot(leaves.slice(i + 1 - w, i + 1)));
      db.prepare('UPDATE entries SET nodes = ? WHERE seq = ?').run(
        nodes.length ? Buffer.concat(nodes) : null,
        i,
      );
    });
    if (opts.dropCheckpoints === true) db.prepare('DELETE FROM checkpoints').run();
  } finally {
    db.close();
  }
}

/** Deletes the core's own signed checkpoints, the attacker's second step once the core refuses to sign. */
export function dropAuditCheckpoints(dataDir: string): void {
  const db = new Database(join(dataDir, 'audit', 'audit.sqlite'));
  try {
    db.prepare('DELETE FROM checkpoints').run();
  } finally {
    db.close();
  }
}
