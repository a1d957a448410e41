import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  AuditSearchResponse,
  AuditVerifyResponse,
  EmbeddingStats,
} from '../../main/common/contract/index.js';
import { cosine, type Embedder } from '../../main/service/embed/embedder.js';
import { openUseLite } from '../../main/service/embed/use-lite.js';
import { tinyBert } from '../../main/service/embed/tiny-bert.js';
import { AuditLog } from '../../main/service/audit/log.js';
import { ROOT, TestSandbox, writeDocument } from '../support/sandbox.js';

// Audit search against a real core on the development host, driven through the CLI as an admin would.
// The log is written by the audit log's own code while the core is stopped (the labelled set's
// summaries, then a backlog) and the core indexes and embeds it when it starts: the backfill path.
// Independent readers: the sqlite3 command-line tool on the index file, USE-lite loaded in this
// process (a stored vector must equal the embedding of the redacted summary), and `audit verify-proof`
// / `audit import-verify`, which check proofs offline with the checkpoint's key.
let sb: TestSandbox;
let base: string;
let use: Embedder;
const labelled = JSON.parse(readFileSync(join(ROOT, 'bench/search/labelled.json'), 'utf8')) as {
  entries: Record<string, string>;
  queries: { q: string; kind: string; want: string[] }[];
};
const seqOf = new Map<string, number>();
const SECRET = 'cFVyZXNlY3JldGtleS1kby1ub3QtbGVhay0xMjM0NTY3ODkwYWJjZGVm';

const sql = (query: string): string => {
  const r = spawnSync('sqlite3', ['-readonly', join(sb.dataDir, 'audit', 'search.sqlite'), query], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`sqlite3: ${r.stderr}`);
  return r.stdout.trim();
};
const cliJson = <T>(args: string[]): T => {
  const r = sb.cli([...args, '--json']);
  if (r.code !== 0) throw new Error(`op-dbus ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
};
const search = (q: string, ...args: string[]): AuditSearchResponse =>
  cliJson<AuditSearchResponse>(['audit', 'search', q, ...args]);
const verify = (): AuditVerifyResponse => cliJson<AuditVerifyResponse>(['audit', 'verify']);
/** A vector as the index stores it (float32 little-endian), from sqlite3's hex. */
const vectorOfHex = (hex: string): Float32Array => {
  const bytes = Buffer.from(hex, 'hex');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
};
const modelOfCore = (): string => sql("SELECT value FROM meta WHERE key = 'active_model'");
/** Polls fn until it holds (it may be slow: each poll runs a CLI). */
async function until(what: string, fn: () => boolean, timeoutMs = 20_000, intervalMs = 200): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
/** Waits until every entry of the log has a vector of the core's active model. */
async function embedded(): Promise<void> {
  await until(
    'every entry embedded',
    () => {
      const v = verify();
      return (
        v.search !== undefined &&
        v.search.model !== null &&
        v.search.queued === 0 &&
        v.search.indexed === v.size
      );
    },
    120_000,
    500,
  );
}

/** Stops the core (SIGTERM, by PID) so the test can write its log with the log's own code. */
async function stopCore(): Promise<void> {
  const pid = sb.corePid();
  if (pid === undefined) return;
  process.kill(pid, 'SIGTERM');
  await until('the core to stop', () => !existsSync(`/proc/${pid}`));
}
function appendWhileStopped(summaries: string[]): number[] {
  const log = AuditLog.open(join(sb.dataDir, 'audit', 'audit.sqlite'), { writerThread: false });
  try {
    return log
      .appendMany(
        summaries.map((summary) => ({
          kind: 'plan' as const,
          actor: { uid: 0, subject: 'core' },
          plugin: null,
          summary,
        })),
      )
      .map((e) => e.seq);
  } finally {
    log.close();
  }
}

// A WireGuard-style plugin whose schema marks the private key secret: state kept in a JSON file.
const SECRET_PLUGIN = `import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const file = (ctx) => join(ctx.config.root, 'wgsecret.json');
const read = (ctx) => (existsSync(file(ctx)) ? JSON.parse(readFileSync(file(ctx), 'utf8')) : {});
const schema = {
  type: 'object',
  properties: {
    interfaces: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        properties: { listen_port: { type: 'integer' }, private_key: { type: 'string', 'x-secret': true } },
      },
    },
  },
};
const plugin = {
  async available() { return { available: true }; },
  async query(ctx) { return { interfaces: read(ctx) }; },
  async diff(current, desired, ctx) {
    const have = current.interfaces ?? {};
    return {
      resources: Object.entries(desired.interfaces ?? {}).map(([id, want]) => {
        const was = have[id];
        const changes = Object.keys(want)
          .filter((k) => was?.[k] !== want[k])
          .map((k) => ({ path: '/plugins/' + ctx.plugin + '/interfaces/' + id + '/' + k, before: was?.[k], after: want[k] }));
        return { id, action: changes.length === 0 ? 'noop' : was === undefined ? 'create' : 'modify', changes };
      }),
    };
  },
  async checkpoint(_d, ctx) { return read(ctx); },
  async apply(_diff, desired, ctx) { writeFileSync(file(ctx), JSON.stringify(desired.interfaces)); return { changed: 1 }; },
  async verify() { return { drift: [] }; },
  async rollback(cp, ctx) { writeFileSync(file(ctx), JSON.stringify(cp)); },
};
export default { plugin, schema };
`;

beforeAll(async () => {
  use = await openUseLite();
  sb = await TestSandbox.start();
  base = join(sb.dir, '..');
  const pluginDir = join(base, 'plugins', 'wgsecret');
  const root = join(base, 'wg-host');
  mkdirSync(pluginDir, { recursive: true, mode: 0o755 });
  mkdirSync(root, { recursive: true, mode: 0o755 });
  writeFileSync(join(pluginDir, 'index.mjs'), SECRET_PLUGIN);
  writeFileSync(
    join(pluginDir, 'plugin.toml'),
    `[plugin]\nname = "wgsecret"\nversion = "0.1.0"\nentry = "index.mjs"\n\n[config]\nroot = "${root}"\n`,
  );
  await stopCore();
  const ids = Object.keys(labelled.entries);
  appendWhileStopped(ids.map((id) => labelled.entries[id] as string)).forEach((seq, i) =>
    seqOf.set(ids[i] as string, seq),
  );
  await sb.restartCore({ OP_DBUS_PLUGIN_PATH: join(base, 'plugins') });
  await embedded();
}, 240_000);
afterAll(async () => {
  await use?.close();
  await sb?.stop();
});

describe('audit search through the CLI against a real core', () => {
  it('finds a paraphrase that shares no word with its entry in the top 5, where BM25 alone does not', () => {
    const q = labelled.queries.find((x) => x.q === 'a mobile handset lost its tunnel access');
    const target = seqOf.get(q?.want[0] ?? '');
    expect(target).toBeDefined();
    const hybrid = search(q?.q ?? '', '--limit', '5');
    const hit = hybrid.results.find((r) => r.seq === target);
    expect(hit, JSON.stringify(hybrid.results.map((r) => r.entry.summary))).toBeDefined();
    expect(hit?.parts.lexical).toBeNull(); // no word of the query is in it
    expect(hit?.parts.semantic).toBeGreaterThan(0);
    expect(hit?.prove).toBe(`op-dbus audit prove ${target}`);
    expect(hybrid.model?.name).toBe('use-lite');
    const lexical = search(q?.q ?? '', '--limit', '5', '--mode', 'lexical');
    expect(lexical.results.map((r) => r.seq)).not.toContain(target);
    // and the way to prove it works: the proof's leaf is the entry's exact bytes
    const proof = cliJson<{ entry: string; seq: number }>(['audit', 'prove', String(target)]);
    expect(Buffer.from(proof.entry, 'base64').toString('utf8')).toContain(hit?.entry.summary);
  });

  it('matches identifiers exactly and combines filters with both sides', () => {
    const r = search('51820');
    expect(r.exact).toEqual(['51820']);
    const seqs = r.results.map((x) => x.seq);
    expect(seqs).toEqual(expect.arrayContaining([seqOf.get('e01'), seqOf.get('e05')]));
    // 51830 (e03) and 51821 alone never match "51820"
    expect(seqs).not.toContain(seqOf.get('e03'));
    for (const x of r.results) expect(x.entry.summary).toMatch(/(^|[^0-9])51820([^0-9]|$)/);
    expect(
      search('vi101')
        .results.map((x) => x.seq)
        .sort(),
    ).toEqual([seqOf.get('e09'), seqOf.get('e10')].sort());
    // a filter applies to the semantic side too: no plan entry is of kind apply
    expect(
      search('when did we open the VPN port?', '--kind', 'apply').results.every(
        (x) => x.entry.kind === 'apply',
      ),
    ).toBe(true);
    expect(search('51820', '--kind', 'auth-denied').results).toEqual([]);
    expect(search('51820', '--until', '2000-01-01T00:00:00Z').results).toEqual([]);
    expect(search('51820', '--since', '2000-01-01T00:00:00Z').results.length).toBe(2);
  });

  it('keeps a WireGuard-style secret out of the summary, the FTS index and the embedder input', async () => {
    const doc = writeDocument(
      base,
      'wg.json',
      JSON.stringify({
        version: 1,
        plugins: { wgsecret: { interfaces: { wg7: { listen_port: 51999, private_key: SECRET } } } },
      }),
    );
    const plan = sb.cli(['plan', doc, '--json']);
    expect(plan.code, plan.stderr).toBe(2);
    expect(plan.stdout).not.toContain(SECRET);
    await embedded();
    const [found] = search('wg7 51999').results;
    expect(found?.entry.summary).toContain('wgsecret wg7 added (listen_port 51999, private_key (secret))');
    expect(found?.entry.summary).not.toContain(SECRET);
    // the index file (and its WAL) never saw the secret: not as text, not as a token
    for (const f of ['search.sqlite', 'search.sqlite-wal']) {
      const p = join(sb.dataDir, 'audit', f);
      if (existsSync(p)) expect(readFileSync(p).includes(Buffer.from(SECRET))).toBe(false);
    }
    expect(sql(`SELECT count(*) FROM docs_fts WHERE docs_fts MATCH '"${SECRET}"'`)).toBe('0');
    expect(search(SECRET).results).toEqual([]);
    // the stored vector is USE-lite's embedding of the redacted summary: that text, no other, was its input
    const hex = sql(
      `SELECT hex(vec) FROM vectors WHERE seq = ${found?.seq ?? -1} AND model = '${modelOfCore()}'`,
    );
    const stored = vectorOfHex(hex);
    const [ofSummary] = await use.embed([found?.entry.summary ?? '']);
    const [withSecret] = await use.embed([`${found?.entry.summary ?? ''} ${SECRET}`]);
    expect(cosine(stored, ofSummary as Float32Array)).toBeGreaterThan(0.9999);
    expect(cosine(stored, withSecret as Float32Array)).toBeLessThan(0.999);
  });

  it('embeds through the unprivileged embedder process: killed mid-backfill, it is restarted and no text is lost or embedded twice', async () => {
    const size = verify().size;
    const model = modelOfCore();
    await stopCore();
    const backlog = Array.from(
      { length: 200 },
      (_, i) =>
        `plan ${(i * 104_729).toString(16).padStart(12, '0')}: 1 change(s): units svc${300 + i}.service: state stopped → running, enabled false → true`,
    );
    const seqs = appendWhileStopped(backlog);
    const corePid = await sb.restartCore({ OP_DBUS_PLUGIN_PATH: join(base, 'plugins') });
    await until(
      'part of the backlog embedded',
      () => Number(sql(`SELECT count(*) FROM vectors WHERE model = '${model}'`)) > size + 20,
      120_000,
      50,
    );
    // while the core indexes: the embedder is a child process of its own, running as nobody (read from /proc)
    const during = cliJson<EmbeddingStats>(['model', 'info']);
    const pid = during.process?.pid ?? -1;
    expect(pid).not.toBe(corePid);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('embedder-child.js');
    expect(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]).toBe(String(corePid));
    expect(/^Uid:\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.slice(1)).toEqual([
      '65534',
      '65534',
    ]);
    expect(during.process?.uid).toBe(65534);
    // and the core's own uid is not: the model's bytes are parsed in the child only
    expect(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${corePid}/status`, 'utf8'))?.[1]).toBe('0');
    expect(during.search).toMatchObject({ model });
    expect(during.search?.queued).toBeGreaterThan(0);
    process.kill(pid, 'SIGKILL');
    await embedded();
    const after = cliJson<EmbeddingStats>(['model', 'info']);
    expect(after.process?.pid).not.toBe(pid);
    expect(after.process?.uid).toBe(65534);
    expect(after.process?.restarts).toBe(1);
    expect(after.process?.failedBatches).toBe(0);
    // killed mid-batch, that batch was sent again once (between two batches there is nothing to resend)
    expect(after.process?.retried).toBeLessThanOrEqual(1);
    // none twice: the process computed exactly the backlog's texts, each once, retried batch included
    expect(after.process?.texts).toBe(backlog.length);
    expect(after.search).toMatchObject({ model, queued: 0, vectors: size + backlog.length });
    expect(sql(`SELECT count(*) FROM vectors WHERE model = '${model}'`)).toBe(String(size + backlog.length));
    expect(
      sql('SELECT count(*) FROM (SELECT seq FROM vectors GROUP BY seq, model HAVING count(*) > 1)'),
    ).toBe('0');
    // no text lost or misplaced: each entry's vector is USE-lite's embedding of its own summary (every 5th)
    const sample = seqs.filter((_, i) => i % 5 === 0);
    const mine = await use.embed(sample.map((seq) => backlog[seqs.indexOf(seq)] as string));
    sample.forEach((seq, i) => {
      const stored = vectorOfHex(
        sql(`SELECT hex(vec) FROM vectors WHERE seq = ${seq} AND model = '${model}'`),
      );
      expect(cosine(stored, mine[i] as Float32Array)).toBeGreaterThan(0.9999);
    });
  }, 240_000);

  it('after kill -9 during a backfill: every entry has a vector or is queued, none twice, the chain and earlier proofs intact', async () => {
    const key = cliJson<{ verifierKey: string }>(['audit', 'key']).verifierKey;
    const cp = sb.cli(['audit', 'checkpoint']).stdout;
    const cpFile = join(base, 'before.cp');
    writeFileSync(cpFile, cp);
    const size = verify().size;
    const proofs = [0, Math.floor(size / 2), size - 1].map((seq) => {
      const f = join(base, `proof-${seq}.txt`);
      writeFileSync(f, sb.cli(['audit', 'prove', String(seq)]).stdout);
      return f;
    });
    await stopCore();
    const backlog = Array.from(
      { length: 240 },
      (_, i) =>
        `plan ${(i * 7919).toString(16).padStart(12, '0')}: 1 change(s): lxc vi${200 + i}: memory ${512 * (1 + (i % 4))} → ${1024 * (1 + (i % 3))}`,
    );
    appendWhileStopped(backlog);
    const model = modelOfCore();
    const pid = await sb.restartCore({ OP_DBUS_PLUGIN_PATH: join(base, 'plugins') });
    // kill it while it embeds the backlog (some vectors of it stored, not all)
    await until(
      'part of the backlog embedded',
      () => Number(sql(`SELECT count(*) FROM vectors WHERE model = '${model}'`)) > size + 20,
      120_000,
      50,
    );
    process.kill(pid, 'SIGKILL');
    await until('the killed core to go', () => !existsSync(`/proc/${pid}`));
    const stored = Number(sql(`SELECT count(*) FROM vectors WHERE model = '${model}'`));
    expect(stored).toBeLessThan(size + backlog.length);
    expect(sql('SELECT seq, model FROM vectors GROUP BY seq, model HAVING count(*) > 1')).toBe('');
    await sb.restartCore({ OP_DBUS_PLUGIN_PATH: join(base, 'plugins') });
    const v = verify();
    expect(v.ok).toBe(true);
    expect(v.size).toBe(size + backlog.length);
    expect(v.search?.indexed).toBe(v.size);
    expect((v.search?.vectors ?? 0) + (v.search?.queued ?? 0)).toBe(v.size);
    expect(v.search?.vectors).toBeGreaterThanOrEqual(stored);
    for (const f of proofs) {
      const r = sb.cli(['audit', 'verify-proof', '--proof', f, '--checkpoint', cpFile, '--key', key]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^OK: entry/);
    }
    await embedded();
    expect(sql(`SELECT count(*) FROM vectors WHERE model = '${model}'`)).toBe(String(v.size));
    expect(
      sql('SELECT count(*) FROM (SELECT seq FROM vectors GROUP BY seq, model HAVING count(*) > 1)'),
    ).toBe('0');
  }, 240_000);

  it('a model change re-embeds every entry, never mixes two models, and leaves the checkpoint roots as they were', async () => {
    const before = cliJson<{ size: number; root: string }>(['audit', 'checkpoint']);
    const key = cliJson<{ verifierKey: string }>(['audit', 'key']).verifierKey;
    const cpFile = join(base, 'model-a.cp');
    writeFileSync(cpFile, sb.cli(['audit', 'checkpoint']).stdout);
    const a = modelOfCore();
    // model B: a BERT-shaped ONNX graph (the embed branch's tiny-bert) run by onnxruntime, a different model
    const dir = join(base, 'model-b');
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const tiny = tinyBert();
    writeFileSync(join(dir, 'model.onnx'), tiny.onnx);
    writeFileSync(join(dir, 'tokenizer.json'), tiny.tokenizerJson);
    // `model use --wait` returns once the re-embedding is done and every entry has a vector of B
    const used = cliJson<{ model: { id: string }; reembed: { state: string } }>([
      'model',
      'use',
      dir,
      '--wait',
    ]);
    expect(used.reembed.state).toBe('done');
    const info = cliJson<EmbeddingStats>(['model', 'info']);
    expect(info.search).toMatchObject({ model: used.model.id, queued: 0 });
    expect(info.search?.vectors).toBe(info.search?.entries);
    await embedded();
    const b = modelOfCore();
    expect(b).not.toBe(a);
    const size = verify().size;
    expect(sql(`SELECT count(*) FROM vectors WHERE model = '${b}'`)).toBe(String(size));
    const r = search('when did we open the VPN port?');
    expect(r.model?.id).toBe(b);
    expect(r.results.length).toBeGreaterThan(0);
    // every semantic part is B's cosine of the query and that entry (read from the file, embedded here by B)
    const { openOnnxBert, readOnnxBertFolder } = await import('../../main/service/embed/onnx-bert.js');
    const embedB = await openOnnxBert(readOnnxBertFolder(dir));
    try {
      const [qv] = await embedB.embed(['when did we open the VPN port?']);
      for (const x of r.results) {
        const hex = sql(`SELECT hex(vec) FROM vectors WHERE seq = ${x.seq} AND model = '${b}'`);
        const vec = vectorOfHex(hex);
        expect(x.parts.semantic).toBeCloseTo(cosine(qv as Float32Array, vec), 3);
      }
    } finally {
      await embedB.close();
    }
    // history untouched: the first entries of the export still hash to model A's checkpoint root
    const exported = join(base, 'export.jsonl');
    writeFileSync(exported, sb.cli(['audit', 'export']).stdout);
    const iv = cliJson<{ ok: boolean; root: string }>([
      'audit',
      'import-verify',
      exported,
      '--checkpoint',
      cpFile,
      '--key',
      key,
    ]);
    expect(iv).toMatchObject({ ok: true, root: before.root });
    expect(verify().ok).toBe(true);
  }, 240_000);
});
