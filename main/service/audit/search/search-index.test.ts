import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Embedder } from '../../embed/embedder.js';
import { openUseLite } from '../../embed/use-lite.js';
import { describeChanges } from '../../engine/change-summary.js';
import { AuditLog } from '../log.js';
import { AuditSearch } from './audit-search.js';
import { parseQuery, containsExactly } from './query.js';
import { SearchIndex } from './search-index.js';
import { VectorSet } from './vector-set.js';

// The index beside the chain: rebuilt when deleted or damaged, stale rows told apart from tampered
// entries, the labelled set's promises kept, the ANN path measured against the exact one. Real parts:
// SQLite files on disk (read back with the sqlite3 tool), the real USE-lite model loaded once.
const ROOT = resolve(import.meta.dirname, '../../../..');
const labelled = JSON.parse(readFileSync(join(ROOT, 'bench/search/labelled.json'), 'utf8')) as {
  entries: Record<string, string>;
  queries: { q: string; kind: string; want: string[] }[];
};
let dir: string;
let use: Embedder;
let log: AuditLog;
const sqlite3 = (file: string, query: string): string => {
  const r = spawnSync('sqlite3', [file, query], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'opdbus-search-unit-'));
  use = await openUseLite();
  log = AuditLog.open(join(dir, 'audit.sqlite'), { writerThread: false });
  log.appendMany(
    Object.values(labelled.entries).map((summary) => ({
      kind: 'plan' as const,
      actor: { uid: 0, subject: 'core' },
      plugin: null,
      summary,
    })),
  );
}, 60_000);
afterAll(async () => {
  log?.close();
  await use?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** An indexer over the test's log with USE-lite, run until every entry is embedded. */
async function indexed(file: string): Promise<AuditSearch> {
  const s = new AuditSearch(SearchIndex.open(file), log);
  s.useEmbedder(use);
  await s.waitIdle();
  return s;
}

describe('the labelled set (bench/search/labelled.json)', () => {
  it('has at least 60 queries, half of them paraphrases sharing no content word with their target', () => {
    expect(labelled.queries.length).toBeGreaterThanOrEqual(60);
    const paraphrases = labelled.queries.filter((q) => q.kind === 'paraphrase');
    expect(paraphrases.length * 2).toBeGreaterThanOrEqual(labelled.queries.length);
    // words as the index splits them; two words are "the same" when equal or one stems into the other
    const stop = new Set(
      'the a an of to in on for and or is was were be did do we it its their his her that this with at by from as when what which who how our my there has had can now may only another any'.split(
        ' ',
      ),
    );
    const words = (t: string): string[] => parseQuery(t).words.filter((w) => !stop.has(w) && w.length > 1);
    const same = (a: string, b: string): boolean => {
      if (a === b) return true;
      const [s, l] = a.length <= b.length ? [a, b] : [b, a];
      if (s.length >= 4 && l.startsWith(s)) return true;
      let p = 0;
      while (p < s.length && s[p] === l[p]) p += 1;
      return p >= 5;
    };
    for (const q of paraphrases) {
      for (const id of q.want) {
        const target = words(labelled.entries[id] ?? '');
        const shared = words(q.q).filter((w) => target.some((t) => same(w, t)));
        expect(shared, `${q.q} / ${id}`).toEqual([]);
      }
    }
  });
});

describe('summaries', () => {
  it('say what changed with values, and name a secret without showing it', () => {
    const text = describeChanges([
      {
        plugin: 'wireguard',
        resources: [
          {
            id: 'wg0',
            action: 'modify',
            changes: [
              { path: '/plugins/wireguard/interfaces/wg0/listen_port', before: 51820, after: 51821 },
              {
                path: '/plugins/wireguard/interfaces/wg0/peers/laptop-carol',
                after: { allowed_ips: ['10.0.0.2/32'] },
              },
              {
                path: '/plugins/wireguard/interfaces/wg0/private_key',
                before: '«redacted»',
                after: '«redacted»',
              },
            ],
          },
          { id: 'wg1', action: 'delete', changes: [] },
          { id: 'wg2', action: 'noop', changes: [] },
        ],
      },
    ]);
    expect(text).toBe(
      'wireguard wg0: listen_port 51820 → 51821, peers/laptop-carol added, private_key changed (secret); wireguard wg1 removed',
    );
  });
});

describe('queries', () => {
  it('keep identifiers whole and match them only as whole tokens', () => {
    expect(parseQuery('when did we open 51820 on vi101 for nginx.service?').identifiers).toEqual([
      '51820',
      'vi101',
      'nginx.service',
    ]);
    expect(containsExactly('listen_port 51820 → 51821', '51820')).toBe(true);
    expect(containsExactly('listen_port 518200', '51820')).toBe(false);
    expect(containsExactly('units nginx.service.d: x', 'nginx.service')).toBe(false);
    expect(containsExactly('units nginx.service: state', 'nginx.service')).toBe(true);
  });
});

describe('the index beside the chain', () => {
  it('is rebuilt from the log when deleted or damaged, and the chain never changes', async () => {
    const file = join(dir, 'rebuild.sqlite');
    const rootBefore = log.treeHead().root.toString('hex');
    let s = await indexed(file);
    const first = s.index.status();
    expect(first).toMatchObject({ indexed: log.head().size, queued: 0, vectors: log.head().size });
    const answer = (
      await s.search({ query: 'a mobile handset lost its tunnel access', limit: 5 })
    ).results.map((r) => r.seq);
    await s.stop();
    // deleted
    for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
    s = await indexed(file);
    expect(s.index.rebuilt).toMatch(/no search index yet/);
    expect(s.index.status()).toEqual(first);
    expect(
      (await s.search({ query: 'a mobile handset lost its tunnel access', limit: 5 })).results.map(
        (r) => r.seq,
      ),
    ).toEqual(answer);
    await s.stop();
    // damaged: garbage over the file's pages
    const bytes = readFileSync(file);
    bytes.fill(0x5a, 100, Math.min(bytes.length, 20_000));
    writeFileSync(file, bytes);
    rmSync(`${file}-wal`, { force: true });
    s = await indexed(file);
    expect(s.index.rebuilt).toMatch(/unreadable/);
    expect(s.index.status()).toEqual(first);
    await s.stop();
    expect(log.treeHead().root.toString('hex')).toBe(rootBefore);
    expect(log.verify().ok).toBe(true);
  }, 120_000);

  it('tells a missing vector (queued) and a stale row (indexed again) from a tampered entry (the chain verify)', async () => {
    const file = join(dir, 'verify.sqlite');
    const s = await indexed(file);
    await s.stop();
    const model = sqlite3(file, "SELECT value FROM meta WHERE key = 'active_model'");
    // a vector lost, another damaged (wrong length), a row's text changed behind the index's back
    sqlite3(file, `DELETE FROM vectors WHERE seq = 3 AND model = '${model}'`);
    sqlite3(file, `UPDATE vectors SET vec = x'00ff' WHERE seq = 4 AND model = '${model}'`);
    sqlite3(
      file,
      "INSERT INTO docs_fts(docs_fts, rowid, text) SELECT 'delete', seq, text FROM docs WHERE seq = 5",
    );
    sqlite3(file, "UPDATE docs SET text = 'nothing happened' WHERE seq = 5");
    sqlite3(file, "INSERT INTO docs_fts(rowid, text) VALUES (5, 'nothing happened')");
    const again = new AuditSearch(SearchIndex.open(file), log);
    try {
      again.index.useModel(use.model); // loading drops the damaged vector: queued again
      expect(again.index.status().queued).toBe(2);
      const v = again.index.verify(log);
      expect(v).toMatchObject({ stale: 1, queued: 3 });
      expect(log.verify().ok).toBe(true); // none of this is a bad entry
      expect(sqlite3(file, 'SELECT text FROM docs WHERE seq = 5')).toBe(
        JSON.parse(log.exportLeaves(5, 1)[0]?.body ?? '{}').summary,
      );
      again.useEmbedder(use);
      await again.waitIdle();
      expect(again.index.status()).toMatchObject({ queued: 0, vectors: log.head().size });
      expect(
        sqlite3(file, 'SELECT count(*) FROM (SELECT 1 FROM vectors GROUP BY seq, model HAVING count(*) > 1)'),
      ).toBe('0');
    } finally {
      await again.stop();
    }
    // a tampered entry is the chain's verdict, named by seq
    const copy = join(dir, 'tampered.sqlite');
    log.flush();
    const db = new Database(join(dir, 'audit.sqlite'), { readonly: true });
    await db.backup(copy);
    db.close();
    sqlite3(
      copy,
      "UPDATE entries SET body = replace(body, 'telnet', 'ssh'), summary = replace(summary, 'telnet', 'ssh') WHERE summary LIKE '%telnet%'",
    );
    const tampered = AuditLog.open(copy, { writerThread: false, payloadDir: join(dir, 'payloads-copy') });
    try {
      const verdict = tampered.verify();
      expect(verdict.ok).toBe(false);
      expect(verdict.firstBad?.seq).toBeGreaterThanOrEqual(0);
    } finally {
      tampered.close();
    }
  }, 120_000);
});

describe('the ANN path', () => {
  it('past its threshold answers through HNSW with recall@10 ≥ 0.95 against exact, filters included', async () => {
    const texts = Object.values(labelled.entries);
    const real = await use.embed(texts);
    // structured vectors: real ones plus small noise (the bench's method)
    let seed = 7;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const set = new VectorSet(512, 3000, 1000);
    for (let i = 0; i < 3000; i++) {
      const base = real[i % real.length] as Float32Array;
      const v = base.map((x) => x + (rand() - 0.5) * 0.03);
      const n = Math.hypot(...v);
      set.add(
        i,
        v.map((x) => x / n),
      );
    }
    const queries = await use.embed(labelled.queries.slice(0, 20).map((q) => q.q));
    let found = 0;
    for (const q of queries) {
      const ann = set.topK(q, 10);
      expect(ann.method).toBe('ann');
      const exact = new Set(set.topK(q, 10, undefined, true).hits.map((h) => h.seq));
      found += ann.hits.filter((h) => exact.has(h.seq)).length;
      const even = set.topK(q, 10, { test: (s) => s % 2 === 0 });
      expect(even.hits.every((h) => h.seq % 2 === 0)).toBe(true);
    }
    expect(found / (10 * queries.length)).toBeGreaterThanOrEqual(0.95);
  }, 60_000);
});
