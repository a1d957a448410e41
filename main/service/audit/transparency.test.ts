import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Checkpointer } from './checkpointer.js';
import { AuditLog, type AppendInput } from './log.js';
import { MerkleTree, verifyConsistency, verifyInclusion } from '../../common/transparency/merkle.js';
import {
  checkpointBody,
  encodeVerifierKey,
  keyHash,
  openCheckpoint,
  parseVerifierKey,
  signerFromSeed,
  signNote,
} from '../../common/transparency/note.js';
import {
  formatConsistencyProof,
  formatInclusionProof,
  parseProofText,
  rootFromExport,
} from '../../common/transparency/proof-text.js';
import { leafHash, leafHashOfText } from '../../common/transparency/rfc6962.js';

const SEED = 20261125;
function check<T>(name: string, prop: fc.IPropertyWithHooks<T>, numRuns: number): void {
  console.log(`transparency property "${name}": ${numRuns} runs, seed ${SEED}`);
  fc.assert(prop, { seed: SEED, numRuns });
}

let dir: string;
let logs: AuditLog[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-transparency-'));
});
afterEach(() => {
  for (const l of logs) {
    try {
      l.close();
    } catch {
      // already closed by the test
    }
  }
  logs = [];
  fs.rmSync(dir, { recursive: true, force: true });
});

function open(name = 'a.sqlite', opts: Parameters<typeof AuditLog.open>[1] = {}): AuditLog {
  const l = AuditLog.open(path.join(dir, name), opts);
  logs.push(l);
  return l;
}
const input = (i: number, over: Partial<AppendInput> = {}): AppendInput => ({
  kind: 'plan',
  actor: { uid: 1000 + (i % 3), subject: ':1.9' },
  plugin: i % 2 === 0 ? 'hostname' : 'net',
  summary: `entry ${i}`,
  ...over,
});
const signer = signerFromSeed('example.org/log', Buffer.alloc(32, 9));
const verifier = (() => {
  const v = parseVerifierKey(encodeVerifierKey(signer));
  if (!v.ok) throw new Error(v.reason);
  return v.verifier;
})();

describe('signed notes and checkpoints (C2SP)', () => {
  it('signs the tlog-checkpoint body with a key hash of SHA-256(name, LF, 0x01, key)[:4] and opens it', () => {
    const note = signNote(
      checkpointBody({ origin: 'example.org/log', size: 5, root: Buffer.alloc(32, 1) }),
      signer,
    );
    const [body, sigs] = note.split('\n\n');
    expect(body).toBe(`example.org/log\n5\n${Buffer.alloc(32, 1).toString('base64')}`);
    const sig = Buffer.from((sigs as string).split(' ')[2] as string, 'base64');
    expect(sig.subarray(0, 4)).toEqual(keyHash('example.org/log', signer.publicKey));
    expect(sig).toHaveLength(68);
    const opened = openCheckpoint(note, verifier);
    expect(opened.ok && opened.checkpoint.size).toBe(5);
    expect(encodeVerifierKey(signer)).toMatch(/^example\.org\/log\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
  });

  it('names a forged signature, another key, garbage before and after, and truncation', () => {
    const note = signNote(
      checkpointBody({ origin: 'example.org/log', size: 5, root: Buffer.alloc(32, 1) }),
      signer,
    );
    const reason = (n: string) => {
      const r = openCheckpoint(n, verifier);
      return r.ok ? 'ok' : r.reason;
    };
    const at = note.lastIndexOf(' ') + 30;
    expect(reason(note.slice(0, at) + (note[at] === 'A' ? 'B' : 'A') + note.slice(at + 1))).toMatch(
      /line 5: the signature .* does not verify/,
    );
    expect(reason(note.replace('\n5\n', '\n6\n'))).toMatch(/does not verify/);
    const other = signNote(
      checkpointBody({ origin: 'example.org/log', size: 5, root: Buffer.alloc(32, 1) }),
      signerFromSeed('example.org/log', Buffer.alloc(32, 3)),
    );
    expect(reason(other)).toMatch(/no signature by the key/);
    expect(reason(`hello\n${note}`)).toMatch(/line 2: tree size is not a decimal number/);
    expect(reason(`${note}trailing\n`)).toMatch(/line 6: not a signature line/);
    expect(reason(`${note}x`)).toMatch(/does not end with a newline/);
    expect(reason(note.slice(0, 20))).toMatch(/newline|blank line/);
  });
});

describe('proof text forms', () => {
  it('round-trip and reject every mutation of a byte (property)', () => {
    check(
      'proof text round trip and mutations',
      fc.property(fc.integer({ min: 1, max: 200 }), fc.nat(), fc.nat(), (size, i, flip) => {
        const tree = MerkleTree.fromLeafHashes(
          Array.from({ length: size }, (_, k) => leafHash(Buffer.from(`e${k}`))),
        );
        const index = i % size;
        const text = formatInclusionProof({
          index,
          size,
          entry: Buffer.from(`e${index}`),
          proof: tree.inclusionProof(index, size),
        });
        const parsed = parseProofText(text);
        if (!parsed.ok || parsed.proof.kind !== 'inclusion') return false;
        const p = parsed.proof;
        if (!verifyInclusion(leafHash(p.entry), p.index, p.size, p.proof, tree.root(size)).ok) return false;
        // flip one character: either the text no longer parses, or the proof no longer verifies
        const at = flip % text.length;
        const mutated = text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1);
        if (mutated === text) return true;
        const m = parseProofText(mutated);
        if (!m.ok || m.proof.kind !== 'inclusion') return true;
        return !verifyInclusion(
          leafHash(m.proof.entry),
          m.proof.index,
          m.proof.size,
          m.proof.proof,
          tree.root(size),
        ).ok;
      }),
      300,
    );
  });

  it('names garbage before, after and inside, and a consistency proof for the wrong sizes fails', () => {
    const tree = MerkleTree.fromLeafHashes(
      Array.from({ length: 9 }, (_, k) => leafHash(Buffer.from(`e${k}`))),
    );
    const text = formatConsistencyProof({ oldSize: 3, newSize: 9, proof: tree.consistencyProof(3, 9) });
    const why = (t: string) => {
      const r = parseProofText(t);
      return r.ok ? 'ok' : r.reason;
    };
    expect(why(`x\n${text}`)).toMatch(/^line 1: expected/);
    expect(why(`${text}x\n`)).toMatch(/not the base64 of a 32-byte hash: "x" \(text after the proof\?\)/);
    expect(why(text.replace('old 3', 'old three'))).toMatch(/line 2: old is not a decimal number/);
    expect(why(text.replace('new 9', 'nwe 9'))).toMatch(/line 3: expected `new <value>`/);
    const p = parseProofText(text);
    expect(p.ok && verifyConsistency(3, 9, tree.root(3), tree.root(9), p.proof.proof).ok).toBe(true);
    expect(p.ok && verifyConsistency(4, 9, tree.root(4), tree.root(9), p.proof.proof).ok).toBe(false);
  });
});

describe('the log tree stored in SQLite', () => {
  it('gives the same roots and proofs as the in-memory tree at every size (property)', () => {
    check(
      'stored tree equals MerkleTree',
      fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 5 }), (batches) => {
        const l = open(`p${Math.random()}.sqlite`);
        const mem = new MerkleTree();
        let n = 0;
        for (const b of batches) {
          const written = l.appendMany(Array.from({ length: b }, () => input(n++)));
          for (const e of written) mem.append(Buffer.from(e.leaf, 'hex'));
        }
        for (let size = 1; size <= n; size++) {
          if (!l.rootAt(size).equals(mem.root(size))) return false;
          const i = (size * 7) % size;
          const proof = l.inclusionProof(i, size).proof;
          if (Buffer.concat(proof).compare(Buffer.concat(mem.inclusionProof(i, size))) !== 0) return false;
          if (
            Buffer.concat(l.consistencyProof(size, n)).compare(
              Buffer.concat(mem.consistencyProof(size, n)),
            ) !== 0
          )
            return false;
        }
        return l.treeHead().root.equals(mem.root()) && l.verify().ok;
      }),
      25,
    );
  });

  it('keeps proofs right past the levels it caches (size 2,600), while appending and after the table shrinks', () => {
    const file = 'cache.sqlite';
    const l = open(file);
    let mem = new MerkleTree();
    let n = 0;
    const compare = (size: number, probes: number) => {
      for (let k = 0; k < probes; k++) {
        const i = (k * 7919 + size) % size;
        expect(l.inclusionProof(i, size).proof).toEqual(mem.inclusionProof(i, size));
        const old = 1 + ((k * 104729) % size);
        expect(l.consistencyProof(old, size)).toEqual(mem.consistencyProof(old, size));
      }
      expect(l.rootAt(size)).toEqual(mem.root(size));
    };
    for (const batch of [1300, 1, 255, 1044]) {
      for (const e of l.appendMany(Array.from({ length: batch }, () => input(n++)))) {
        mem.append(Buffer.from(e.leaf, 'hex'));
      }
      compare(n, 40);
      compare(Math.floor(n / 2) + 1, 20);
    }
    expect(n).toBe(2600);
    // Another connection truncates the log to 2,000 entries: the cached border and nodes are dropped.
    const db = new Database(path.join(dir, file));
    db.prepare('DELETE FROM entries WHERE seq >= 2000').run();
    db.close();
    expect(l.treeHead()).toEqual({ size: 2000, root: mem.root(2000) });
    compare(2000, 40);
    // New entries where the deleted ones were: no node of the old entries 2,000.. may be served again.
    const kept = Array.from({ length: 2000 }, (_, i) => l.inclusionProof(i, 2000).body);
    const rebuilt = MerkleTree.fromLeafHashes(kept.map((body) => leafHashOfText(body)));
    for (const e of l.appendMany(Array.from({ length: 600 }, (_, i) => input(5000 + i)))) {
      rebuilt.append(Buffer.from(e.leaf, 'hex'));
    }
    mem = rebuilt;
    compare(2600, 40);
    expect(l.verify().ok).toBe(true);
  });

  it('reopens without rebuilding: the border is read back from the rows', () => {
    const l = open();
    l.appendMany(Array.from({ length: 37 }, (_, i) => input(i)));
    const before = l.treeHead();
    l.close();
    const again = open();
    expect(again.treeHead()).toEqual(before);
    again.append(input(37));
    expect(again.verify().ok).toBe(true);
  });

  it('export lines rebuild the same root anywhere', () => {
    const l = open();
    l.appendMany(Array.from({ length: 11 }, (_, i) => input(i)));
    const text = l
      .exportLeaves(0, 100)
      .map((e) => JSON.stringify({ seq: e.seq, leaf: Buffer.from(e.body).toString('base64') }))
      .join('\n');
    const r = rootFromExport(text, 11);
    expect(r.ok && r.root.equals(l.rootAt(11))).toBe(true);
    const r7 = rootFromExport(text, 7);
    expect(r7.ok && r7.root.equals(l.rootAt(7))).toBe(true);
    expect(rootFromExport(text, 12)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/truncated export/) as unknown,
    });
  });
});

describe('faults in the database file', () => {
  it('a truncated file is named', () => {
    const l = open();
    l.appendMany(
      Array.from({ length: 500 }, (_, i) => input(i, { summary: `entry ${i} ${'x'.repeat(200)}` })),
    );
    l.close();
    const file = path.join(dir, 'a.sqlite');
    const size = fs.statSync(file).size;
    fs.truncateSync(file, Math.floor(size / 2));
    let named: string;
    try {
      const again = AuditLog.open(file);
      logs.push(again);
      const v = again.verify();
      named = v.ok ? 'ok' : `${v.firstBad?.reason}`;
    } catch (e) {
      named = `${(e as { code?: string }).code}: ${(e as Error).message}`;
    }
    expect(named).toMatch(/AuditCorrupt|missing|malformed|disk image/);
  });

  it('a flipped byte in a stored body is named with its entry', () => {
    const l = open();
    l.appendMany(Array.from({ length: 50 }, (_, i) => input(i, { summary: `entry ${i} marker-${i}-end` })));
    l.close();
    const file = path.join(dir, 'a.sqlite');
    const bytes = fs.readFileSync(file);
    const at = bytes.indexOf('marker-17-end');
    expect(at).toBeGreaterThan(0);
    bytes[at] = 'M'.charCodeAt(0);
    fs.writeFileSync(file, bytes);
    const v = open().verify();
    expect(v.firstBad?.seq).toBe(17);
    expect(v.firstBad?.reason).toMatch(/entry 17: (stored leaf does not match|index column summary)/);
  });
});

describe('checkpointer', () => {
  it('signs, reuses an unchanged checkpoint, and refuses to sign a rewritten history', () => {
    const l = open();
    const cpr = Checkpointer.open(l, { keyFile: path.join(dir, 'keys', 'k') });
    expect(fs.statSync(path.join(dir, 'keys', 'k')).mode & 0o777).toBe(0o600);
    l.appendMany(Array.from({ length: 5 }, (_, i) => input(i)));
    const first = cpr.checkpoint();
    expect(cpr.checkpoint()).toEqual(first);
    l.append(input(5));
    const second = cpr.checkpoint();
    expect(second.size).toBe(6);
    const v = parseVerifierKey(cpr.verifierKey);
    expect(v.ok && openCheckpoint(second.note, v.verifier).ok).toBe(true);
    l.close();
    // rewrite entry 2's summary and its leaf (a careless attacker) and a node-consistent tree is impossible to keep
    const db = new Database(path.join(dir, 'a.sqlite'));
    // entry 2's leaf replaced and every Merkle node recomputed to match: internally consistent
    db.prepare('UPDATE entries SET leaf = zeroblob(32) WHERE seq = 2').run();
    const leaves = db.prepare<[], { leaf: Buffer }>('SELECT leaf FROM entries ORDER BY seq').all();
    const rebuilt = MerkleTree.fromLeafHashes(leaves.map((r) => r.leaf));
    leaves.forEach((_, i) => {
      const nodes: Buffer[] = [];
      for (let level = 1; (i + 1) % 2 ** level === 0; level++) {
        const k = (i + 1) / 2 ** level - 1;
        nodes.push((rebuilt.levels[level] as Buffer).subarray(k * 32, k * 32 + 32));
      }
      db.prepare('UPDATE entries SET nodes = ? WHERE seq = ?').run(
        nodes.length ? Buffer.concat(nodes) : null,
        i,
      );
    });
    db.close();
    const again = open();
    const cpr2 = Checkpointer.open(again, { keyFile: path.join(dir, 'keys', 'k') });
    expect(cpr2.verifierKey).toBe(cpr.verifierKey);
    again.append(input(6));
    expect(() => cpr2.checkpoint()).toThrow(
      /refusing to sign a checkpoint of 7 entries: it is not consistent with the checkpoint of 6/,
    );
    expect(again.verify().firstBad?.seq).toBe(2);
  });
});

describe('payload retention', () => {
  it('prunes by age and by size, keeps every entry and leaf, and says when and why', () => {
    const X = randomBytes(2500).toString('hex');
    const Y = randomBytes(2500).toString('hex');
    let now = new Date('2026-01-01T00:00:00Z');
    const l = open('a.sqlite', { now: () => now });
    const old = l.append(input(0, { payload: { big: X, n: 1 } }));
    now = new Date('2026-03-01T00:00:00Z');
    const mid = l.append(input(1, { payload: { big: Y, n: 2 } }));
    const fresh = l.append(input(2, { payload: { n: 3 } }));
    const head = l.head();
    expect(l.prunePayloads({ maxAgeMs: 30 * 86_400_000 })).toMatchObject({ pruned: 1 });
    expect(l.payloadInfo(old.payload_hash as string)).toMatchObject({
      status: 'pruned',
      prunedAt: '2026-03-01T00:00:00.000Z',
      reason: expect.stringMatching(/max age 30 days/) as unknown,
    });
    expect(l.payload(old.payload_hash as string)).toBeUndefined();
    expect(l.prunePayloads({ maxBytes: 1000 })).toMatchObject({ pruned: 1 });
    expect(l.payloadInfo(mid.payload_hash as string)).toMatchObject({
      status: 'pruned',
      reason: expect.stringMatching(/over 1000 bytes/) as unknown,
    });
    expect(l.payloadInfo(fresh.payload_hash as string)).toEqual({ status: 'stored', payload: { n: 3 } });
    expect(l.head()).toEqual(head);
    expect(l.verify().ok).toBe(true);
    // the same content named again is stored again
    l.append(input(3, { payload: { big: X, n: 1 } }));
    expect(l.payloadInfo(old.payload_hash as string).status).toBe('stored');
  });
});

describe('group commit', () => {
  it('queued appends share one transaction, keep their order, and a bad one is refused alone', async () => {
    const l = open('a.sqlite', { groupWindowMs: 5 });
    const results = await Promise.allSettled([
      l.appendQueued(input(0)),
      l.appendQueued(input(1, { durations: { x: Number.NaN } })),
      l.appendQueued(input(2)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(l.list({}).entries.map((e) => e.summary)).toEqual(['entry 2', 'entry 0']);
    // a synchronous append commits what is queued first
    const p = l.appendQueued(input(3));
    expect(l.append(input(4)).seq).toBe(3);
    expect((await p).seq).toBe(2);
  });

  it('filters by time range and actor', () => {
    let now = new Date('2026-01-01T00:00:00Z');
    const l = open('a.sqlite', { now: () => now });
    l.append(input(0));
    now = new Date('2026-02-01T00:00:00Z');
    l.append(input(1));
    l.append(input(2));
    expect(l.list({ since: '2026-01-15' }).entries.map((e) => e.seq)).toEqual([2, 1]);
    expect(l.list({ until: '2026-01-15' }).entries.map((e) => e.seq)).toEqual([0]);
    expect(l.list({ actor: 1001 }).entries.map((e) => e.seq)).toEqual([1]);
    expect(() => l.list({ since: 'soon' })).toThrow(/since: "soon" is not a date/);
  });
});

describe('schema 1 logs', () => {
  it('are migrated: Merkle nodes filled in, payloads moved to the store, the chain kept', () => {
    const file = path.join(dir, 'v1.sqlite');
    const db = new Database(file);
    db.exec(`CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE entries(seq INTEGER PRIMARY KEY, body TEXT NOT NULL, leaf BLOB NOT NULL, time TEXT, kind TEXT, plugin TEXT, actor_uid INTEGER, summary TEXT);
      CREATE TABLE payloads(hash TEXT PRIMARY KEY, json TEXT NOT NULL);
      INSERT INTO meta VALUES ('schema_version', '1');`);
    db.close();
    // write entries with today's code into a v2 file, then copy them into the v1 layout
    const src = open('src.sqlite');
    const written = src.appendMany(
      Array.from({ length: 13 }, (_, i) => input(i, i === 4 ? { payload: { a: 1 } } : {})),
    );
    const root = src.rootAt(13);
    src.close();
    const v1 = new Database(file);
    v1.exec(`ATTACH '${path.join(dir, 'src.sqlite')}' AS s;
      INSERT INTO entries SELECT seq, body, leaf, time, kind, plugin, actor_uid, summary FROM s.entries;`);
    v1.prepare('INSERT INTO payloads VALUES (?, ?)').run(written[4]?.payload_hash, '{"a":1}');
    v1.close();
    fs.rmSync(path.join(dir, 'payloads'), { recursive: true, force: true });
    const l = open('v1.sqlite');
    expect(l.verify().ok).toBe(true);
    expect(l.rootAt(13).equals(root)).toBe(true);
    expect(l.payload(written[4]?.payload_hash as string)).toEqual({ a: 1 });
  });
});
