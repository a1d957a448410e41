import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchCase, BenchGroup, StartedGroup } from '../harness.js';
import { seededRandom } from '../statistics.js';
import { openUseLite } from '../../main/service/embed/use-lite.js';
import { VectorSet } from '../../main/service/audit/search/vector-set.js';

/** Summaries embedded for real with USE-lite; every larger set is derived from their vectors. */
const REAL = Number(process.env['OP_DBUS_BENCH_SEARCH_REAL'] ?? 4000);
/** Sizes measured: 1M only when asked (OP_DBUS_BENCH_SEARCH_1M=1): its HNSW build takes long on 2 cores. */
const SIZES = [10_000, 100_000, ...(process.env['OP_DBUS_BENCH_SEARCH_1M'] === '1' ? [1_000_000] : [])];
const K = 10;
const QUERIES = 50;

/** Admin-style summaries as the engine writes them, from templates over plugins, resources and values. */
function summaries(count: number, seed: number): string[] {
  const random = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const n = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo));
  const templates: (() => string)[] = [
    () =>
      `wireguard wg${n(0, 9)}: listen_port ${n(51000, 52000)} → ${n(51000, 52000)}, peers/${pick(['laptop', 'phone', 'tablet', 'server'])}-${pick(['carol', 'dave', 'erin', 'frank', 'grace'])} ${pick(['added', 'removed'])}`,
    () =>
      `lxc vi${n(100, 999)}: memory ${pick([512, 1024, 2048, 4096])} → ${pick([512, 1024, 2048, 4096, 8192])}`,
    () =>
      `lxc vi${n(100, 999)} ${pick(['added (template debian, memory 2048, cpus 2)', 'removed', 'state running → stopped'])}`,
    () =>
      `units ${pick(['nginx', 'postgresql', 'cron', 'docker', 'sshd', 'redis', 'haproxy'])}.service: state ${pick(['running → stopped', 'stopped → running'])}, enabled ${pick(['true → false', 'false → true'])}`,
    () =>
      `firewall nft ${pick(['input', 'forward', 'output'])}: rule allow ${pick(['tcp', 'udp'])} ${n(1, 65535)} ${pick(['added', 'removed'])}`,
    () =>
      `packages apt ${pick(['openssl', 'htop', 'curl', 'linux-image-amd64', 'nginx', 'vim'])}: version ${n(1, 9)}.${n(0, 20)}.${n(0, 30)} → ${n(1, 9)}.${n(0, 20)}.${n(0, 30)}`,
    () => `net br${n(0, 9)}: mtu ${pick([1500, 9000, 1420])} → ${pick([1500, 9000, 1420])}`,
    () => `hostname host: location "Rack ${n(1, 40)}" → "Rack ${n(1, 40)}"`,
    () =>
      `users accounts ${pick(['alice', 'bob', 'carol', 'dave', 'erin'])}${n(1, 99)}: shell /bin/${pick(['bash', 'sh', 'zsh'])} → /bin/${pick(['bash', 'sh', 'zsh'])}`,
    () =>
      `openflow br-int: flow priority=${n(1, 1000)},in_port=${n(1, 48)},actions=${pick(['drop', 'normal', 'output:2'])} ${pick(['added', 'removed'])}`,
    () =>
      `sysctl kernel: ${pick(['vm.swappiness', 'net.ipv4.ip_forward', 'net.core.somaxconn'])} ${n(0, 100)} → ${n(0, 100)}`,
    () =>
      `apply plan ${n(0, 1e9).toString(16)}: applied and verified (${pick(['lxc', 'net', 'units', 'wireguard'])}: ${n(1, 9)} change(s))`,
  ];
  return Array.from(
    { length: count },
    () =>
      `plan ${n(0, 2 ** 31)
        .toString(16)
        .padStart(12, '0')}: 1 change(s): ${pick(templates)()}`,
  );
}

/**
 * Vectors past the real ones: each is a real summary's USE-lite vector plus Gaussian noise (σ = 0.35 of
 * its norm, spread over the dimensions), renormalised. So the set keeps the real data's clusters and
 * their geometry (near-duplicates around every real summary), which uniform noise does not have.
 */
function derived(real: Float32Array[], count: number, seed: number): Float32Array[] {
  const random = seededRandom(seed);
  const dims = real[0]?.length ?? 0;
  const sigma = 0.35 / Math.sqrt(dims);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  return Array.from({ length: count }, () => {
    const base = real[Math.floor(random() * real.length)] as Float32Array;
    const v = new Float32Array(dims);
    let norm = 0;
    for (let j = 0; j < dims; j++) {
      v[j] = (base[j] as number) + gauss() * sigma;
      norm += (v[j] as number) ** 2;
    }
    norm = Math.sqrt(norm);
    for (let j = 0; j < dims; j++) v[j] = (v[j] as number) / norm;
    return v;
  });
}

function rssMb(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

/** Audit search's similarity side at 10k / 100k (/ 1M) vectors: exact scan vs HNSW, recall@10 against exact. */
export const searchGroup: BenchGroup = {
  name: 'search',
  description:
    `top-${K} cosine search over ${SIZES.map((s) => s / 1000 + 'k').join(' / ')} USE-lite (512-d) vectors: the exact scan ` +
    `(VectorSet, unrolled dot products over one Float32Array slab) and the HNSW index (hnswlib-node, M 16, ` +
    `efConstruction 200, ef 128). ${REAL} vectors are real USE-lite embeddings of generated admin-style summaries; ` +
    'the rest are derived from them (a real vector plus Gaussian noise, renormalised: structured, not uniform). ' +
    `Each repetition searches one of ${QUERIES} real query embeddings (paraphrase-style questions).`,
  baseline: `exact-${SIZES[0] ?? 0}`,
  start: async (): Promise<StartedGroup> => {
    const notes: string[] = [];
    const embedder = await openUseLite();
    const dir = mkdtempSync(join(tmpdir(), 'opdbus-search-bench-'));
    try {
      let t0 = performance.now();
      const texts = summaries(REAL, 41);
      const real: Float32Array[] = [];
      for (let i = 0; i < texts.length; i += 64) real.push(...(await embedder.embed(texts.slice(i, i + 64))));
      notes.push(
        `embedding ${REAL} real summaries with USE-lite: ${((performance.now() - t0) / 1000).toFixed(1)} s (${((performance.now() - t0) / REAL).toFixed(1)} ms a text, batches of 64)`,
      );
      const labelled = JSON.parse(
        readFileSync(join(import.meta.dirname, '../../../bench/search/labelled.json'), 'utf8'),
      ) as {
        queries: { q: string }[];
      };
      const queries = await embedder.embed(labelled.queries.slice(0, QUERIES).map((q) => q.q));
      await embedder.close();
      const largest = SIZES[SIZES.length - 1] ?? 0;
      const all = [...real, ...derived(real, Math.max(0, largest - REAL), 43)];
      const cases: BenchCase[] = [];
      for (const size of SIZES) {
        const before = rssMb();
        const set = new VectorSet(512, size, Number.MAX_SAFE_INTEGER);
        for (let i = 0; i < size; i++) set.add(i, all[i] as Float32Array);
        const slabPerVector = set.bytes / size;
        t0 = performance.now();
        const index = set.annIndex();
        const build = (performance.now() - t0) / 1000;
        const file = join(dir, `hnsw-${size}.bin`);
        await index.writeIndex(file);
        const indexPerVector = statSync(file).size / size;
        rmSync(file);
        // recall@10 of HNSW against the exact answer, over every query
        let found = 0;
        index.setEf(128);
        for (const q of queries) {
          const exact = new Set(set.topK(q, K, undefined, true).hits.map((h) => h.seq));
          const ann = index.searchKnn(Array.from(q), K).neighbors;
          found += ann.filter((s) => exact.has(s)).length;
        }
        const recall = found / (K * queries.length);
        notes.push(
          `${size}: HNSW build ${build.toFixed(1)} s; recall@${K} vs exact ${recall.toFixed(3)}; memory per vector: ` +
            `${slabPerVector.toFixed(0)} B in the exact scan's slab (512 float32 + seq), ${indexPerVector.toFixed(0)} B in the HNSW index ` +
            `(its own copy of the vector + links, as written by writeIndex); RSS grew ${(rssMb() - before).toFixed(0)} MiB for both`,
        );
        let i = 0;
        const next = (): Float32Array => queries[i++ % queries.length] as Float32Array;
        cases.push({
          name: `exact-${size}`,
          run: async () => {
            if (set.topK(next(), K, undefined, true).hits.length !== K)
              throw new Error('exact search lost results');
          },
        });
        cases.push({
          name: `ann-${size}`,
          run: async () => {
            if (index.searchKnn(Array.from(next()), K).neighbors.length !== K)
              throw new Error('ANN lost results');
          },
        });
      }
      notes.push(
        'how they grow: the exact scan is linear in the vectors (one dot product each); HNSW search grows ~log n; ' +
          'memory is linear in both, the index adding its links (~2·M ids at level 0) to a second copy of each vector',
      );
      return { cases, notes, stop: async () => rmSync(dir, { recursive: true, force: true }) };
    } catch (e) {
      await embedder.close();
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  },
};
