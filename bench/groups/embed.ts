import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { EmbeddingCache } from '../../main/service/embed/cache.js';
import type { Embedder } from '../../main/service/embed/embedder.js';
import { EmbedderProcess } from '../../main/service/embed/embedder-process.js';
import { openOnnxBert, readOnnxBertFolder } from '../../main/service/embed/onnx-bert.js';
import { tinyBert } from '../../main/service/embed/tiny-bert.js';
import { openUseLite } from '../../main/service/embed/use-lite.js';
import type { BenchCase, BenchGroup, StartedGroup } from '../harness.js';
import { quantileOfSorted, seededRandom, sortedAscending } from '../statistics.js';

const BATCHES = [1, 8, 32, 128] as const;
/** Cache lookups per operation of a hit case (per-lookup cost = median / HITS_PER_OP). */
const HITS_PER_OP = 1000;
const CACHED_TEXTS = 5000;
/** Texts of the backfill whose event-loop lag is measured (OP_DBUS_BENCH_BACKFILL overrides). */
const BACKFILL = Number(process.env['OP_DBUS_BENCH_BACKFILL'] ?? 10_000);

/** Audit-summary-like texts, distinct, ~60-100 characters. */
function summaries(n: number, seed: number): string[] {
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const plugins = [
    'wireguard wg0',
    'hostname',
    'ovs bridge br0',
    'lxc container web1',
    'systemd nginx.service',
  ];
  const changes = [
    'listen_port 51820 → 51821',
    'peer laptop-carol added',
    'pretty name set',
    'enabled',
    'port vi101 added',
  ];
  return Array.from({ length: n }, (_, i) => `${pick(plugins)}: ${pick(changes)}; ${pick(changes)} (#${i})`);
}

function quantilesUs(ns: number[]): string {
  const s = sortedAscending(ns);
  const q = (p: number) => (quantileOfSorted(s, p) / 1000).toFixed(2);
  return `p50 ${q(0.5)} µs, p90 ${q(0.9)} µs, p99 ${q(0.99)} µs`;
}

/**
 * The embedders and the embedding cache: embed time at batch 1/8/32/128 for USE-lite and an ONNX
 * BERT-shaped model (in-process: the model's own cost) and USE-lite through the embedder process;
 * a cache hit per tier, text in → vector out, against computing the vector: the seed's "100x".
 */
export const embedGroup: BenchGroup = {
  name: 'embed',
  description:
    `Embedding per operation: one batch of 1/8/32/128 texts (USE-lite in-process and through the unprivileged embedder ` +
    `process; a tiny ONNX BERT-shaped graph, hidden 16, in-process); cache hits: ${HITS_PER_OP} lookups of distinct cached ` +
    `texts per operation (memory tier; persistent tier with the memory tier kept from answering). Backfill of ${BACKFILL} texts ` +
    `through the process once, with the event loop's delay measured meanwhile.`,
  baseline: 'use-lite-batch-1',
  start: async (): Promise<StartedGroup> => {
    const dir = mkdtempSync(join(tmpdir(), 'opdbus-embed-bench-'));
    const notes: string[] = [];
    const toClose: { close(): Promise<void> | void }[] = [];
    try {
      const t0 = performance.now();
      const use = await openUseLite();
      notes.push(`USE-lite loads in-process in ${(performance.now() - t0).toFixed(0)} ms`);
      toClose.push(use);
      const t1 = performance.now();
      const proc = await EmbedderProcess.start({ kind: 'use-lite' }, { batchSize: 32, maxQueuedTexts: 1024 });
      notes.push(
        `the embedder process (uid ${proc.stats().uid}) starts and loads USE-lite in ${(performance.now() - t1).toFixed(0)} ms`,
      );
      toClose.push(proc);
      const tiny = tinyBert();
      mkdirSync(join(dir, 'tiny'));
      writeFileSync(join(dir, 'tiny', 'model.onnx'), tiny.onnx);
      writeFileSync(join(dir, 'tiny', 'tokenizer.json'), tiny.tokenizerJson);
      const onnx = await openOnnxBert(readOnnxBertFolder(join(dir, 'tiny')));
      toClose.push(onnx);

      // the backfill: the core's loop must stay free while the process embeds
      const backfill = summaries(BACKFILL, 5);
      const lag = monitorEventLoopDelay({ resolution: 10 });
      lag.enable();
      const tb = performance.now();
      await proc.embed(backfill);
      const took = performance.now() - tb;
      lag.disable();
      notes.push(
        `backfill of ${BACKFILL} texts through the process: ${(took / 1000).toFixed(1)} s (${((took * 1000) / BACKFILL).toFixed(0)} µs a text); ` +
          `event-loop delay meanwhile p50 ${(lag.percentile(50) / 1e6).toFixed(2)} ms, p99 ${(lag.percentile(99) / 1e6).toFixed(2)} ms, max ${(lag.max / 1e6).toFixed(2)} ms (10 ms resolution timer)`,
      );

      // the cache, filled with real USE-lite vectors
      const cached = summaries(CACHED_TEXTS, 9);
      const vectors = await use.embed(cached);
      const memory = new EmbeddingCache(use.model, {
        dir: join(dir, 'mem'),
        memoryEntries: CACHED_TEXTS * 2,
      });
      memory.putMany(cached, vectors);
      toClose.push(memory);
      // memoryEntries 1: every lookup misses memory and is answered by SQLite + pread
      const persistent = new EmbeddingCache(use.model, { dir: join(dir, 'disk'), memoryEntries: 1 });
      persistent.putMany(cached, vectors);
      persistent.persistent.flushTouches();
      toClose.push(persistent);
      const rnd = seededRandom(17);
      const probes = Array.from(
        { length: HITS_PER_OP },
        () => cached[Math.floor(rnd() * CACHED_TEXTS)] as string,
      );
      const perLookup: Record<string, number[]> = { memory: [], persistent: [] };
      const hitCase = (name: string, tier: 'memory' | 'persistent', cache: EmbeddingCache): BenchCase => ({
        name,
        run: () => {
          const samples = perLookup[tier] as number[];
          for (const text of probes) {
            const s = process.hrtime.bigint();
            const v = cache.get(text);
            samples.push(Number(process.hrtime.bigint() - s));
            if (v === undefined || v.length !== 512) throw new Error(`${name}: a cached text missed`);
          }
          return Promise.resolve();
        },
      });
      const embedCase = (name: string, e: Embedder, batch: number, seed: number): BenchCase => {
        const texts = summaries(batch, seed);
        return {
          name,
          run: async () => {
            const v = await e.embed(texts);
            if (v.length !== batch) throw new Error(`${name}: ${v.length} vectors for ${batch} texts`);
          },
        };
      };
      return {
        cases: [
          ...BATCHES.map((b) => embedCase(`use-lite-batch-${b}`, use, b, 100 + b)),
          ...BATCHES.map((b) => embedCase(`use-lite-process-batch-${b}`, proc, b, 200 + b)),
          ...BATCHES.map((b) => embedCase(`onnx-tiny-batch-${b}`, onnx, b, 300 + b)),
          hitCase('cache-hit-memory', 'memory', memory),
          hitCase('cache-hit-persistent', 'persistent', persistent),
        ],
        notes: [
          ...notes,
          `per-text cost = case median / batch size; per-hit cost = cache case median / ${HITS_PER_OP}`,
          `cache: ${CACHED_TEXTS} USE-lite vectors (512-d) in each cache; hits are text in → vector out (normalise, SHA-256 key, lookup, copy)`,
        ],
        notesAfter: () =>
          Promise.resolve([
            `memory-tier hit, per lookup: ${quantilesUs(perLookup['memory'] ?? [])}`,
            `persistent-tier hit (memory missed first), per lookup: ${quantilesUs(perLookup['persistent'] ?? [])}`,
            `embedder process after the run: ${JSON.stringify(proc.stats())}`,
          ]),
        stop: async () => {
          for (const c of toClose.reverse()) await c.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (e) {
      for (const c of toClose.reverse()) await c.close();
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  },
};
