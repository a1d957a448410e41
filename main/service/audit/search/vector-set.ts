import { createRequire } from 'node:module';
import type { HierarchicalNSW as Hnsw } from 'hnswlib-node';

const require = createRequire(import.meta.url);

/** From this many vectors on, similarity search goes through the HNSW index instead of scoring every vector. */
export const ANN_MIN = 20_000;
/**
 * HNSW build parameters: M 16, efConstruction 100. Measured (bench/groups/search.ts): a larger M or
 * efConstruction buys less recall than a wider search does, at twice the build time.
 */
export const HNSW_M = 16;
export const HNSW_EF_CONSTRUCTION = 100;
/**
 * HNSW search breadth (ef): at least 2k, and at least this for the set's size. Chosen by the bench's tuning
 * half of the labelled queries (bench/results/search-1m.json, clustered data): recall@10 ≥ 0.95 took ef 64
 * at 10k and 1024-2048 at 100k; the breadth needed grows with n on such data.
 */
export const HNSW_EF_MIN = 512;
export function efForSize(n: number): number {
  return n < 50_000 ? HNSW_EF_MIN : 2048;
}

/** One scored vector: the entry's seq and its cosine similarity to the query. */
export interface Hit {
  seq: number;
  score: number;
}

/**
 * The unit vectors of one model in one Float32Array slab (seq order of insertion), with exact top-k by
 * dot product and, past ANN_MIN, an HNSW index (hnswlib-node, inner product) built on first use and
 * extended as vectors are added.
 */
export class VectorSet {
  private slab: Float32Array;
  private seqs: Float64Array;
  private count = 0;
  private readonly rowOf = new Map<number, number>();
  private hnsw: Hnsw | undefined;
  private indexed = 0;
  /** The HNSW search breadth (ef) used for k results: max(this, 2k); by default efForSize(size). The bench sweeps it. */
  efMin: number | undefined;

  constructor(
    readonly dims: number,
    capacity = 1024,
    private readonly annMin = ANN_MIN,
  ) {
    this.slab = new Float32Array(Math.max(1, capacity) * dims);
    this.seqs = new Float64Array(Math.max(1, capacity));
  }

  get size(): number {
    return this.count;
  }

  /** Bytes the vectors take in memory (the slab and seq array as allocated; the HNSW graph not included). */
  get bytes(): number {
    return this.slab.byteLength + this.seqs.byteLength;
  }

  has(seq: number): boolean {
    return this.rowOf.has(seq);
  }

  /** Adds (or replaces) the vector of an entry; it must have `dims` components and unit length. */
  add(seq: number, vec: Float32Array): void {
    if (vec.length !== this.dims) throw new Error(`vector of ${vec.length} dims in a set of ${this.dims}`);
    const row = this.rowOf.get(seq);
    if (row !== undefined) {
      this.slab.set(vec, row * this.dims);
      this.hnsw = undefined; // a replaced vector: rebuilt on next use
      this.indexed = 0;
      return;
    }
    if (this.count === this.seqs.length) this.grow(this.count * 2);
    this.slab.set(vec, this.count * this.dims);
    this.seqs[this.count] = seq;
    this.rowOf.set(seq, this.count);
    this.count += 1;
  }

  /** The similarity of the query to one entry's vector, or undefined when it has none. */
  scoreOf(seq: number, query: Float32Array): number | undefined {
    const row = this.rowOf.get(seq);
    return row === undefined ? undefined : this.dot(row, query);
  }

  /** Whether `topK` would use the ANN index for an unrestricted search. */
  get usesAnn(): boolean {
    return this.count >= this.annMin;
  }

  /**
   * The k most similar vectors. `allowed` restricts the search (filters): a small explicit list is scored
   * exactly, a predicate goes to HNSW as its filter past ANN_MIN. `exact` forces the full scan (the bench's
   * reference).
   */
  topK(
    query: Float32Array,
    k: number,
    allowed?: { seqs: readonly number[] } | { test: (seq: number) => boolean },
    exact = false,
  ): { hits: Hit[]; method: 'exact' | 'ann' } {
    if (allowed !== undefined && 'seqs' in allowed) {
      const hits: Hit[] = [];
      for (const seq of allowed.seqs) {
        const score = this.scoreOf(seq, query);
        if (score !== undefined) hits.push({ seq, score });
      }
      return { hits: hits.sort(byScore).slice(0, k), method: 'exact' };
    }
    const test = allowed?.test;
    if (!exact && this.usesAnn) return { hits: this.annTopK(query, k, test), method: 'ann' };
    return { hits: this.exactTopK(query, k, test), method: 'exact' };
  }

  private exactTopK(query: Float32Array, k: number, test?: (seq: number) => boolean): Hit[] {
    // a bounded min-heap would be asymptotically better; with k ≤ a few hundred a sorted array is as fast
    const best: Hit[] = [];
    let floor = -Infinity;
    for (let row = 0; row < this.count; row++) {
      const seq = this.seqs[row] as number;
      if (test !== undefined && !test(seq)) continue;
      const score = this.dot(row, query);
      if (best.length < k) {
        best.push({ seq, score });
        if (best.length === k) {
          best.sort(byScore);
          floor = (best[k - 1] as Hit).score;
        }
      } else if (score > floor) {
        let i = k - 1;
        while (i > 0 && (best[i - 1] as Hit).score < score) {
          best[i] = best[i - 1] as Hit;
          i -= 1;
        }
        best[i] = { seq, score };
        floor = (best[k - 1] as Hit).score;
      }
    }
    return best.sort(byScore);
  }

  private annTopK(query: Float32Array, k: number, test?: (seq: number) => boolean): Hit[] {
    const index = this.annIndex();
    index.setEf(Math.max(this.efMin ?? efForSize(this.count), 2 * k));
    const n = Math.min(k, this.count);
    const r = index.searchKnn(Array.from(query), n, test);
    // inner-product space: distance = 1 - dot
    return r.neighbors.map((seq, i) => ({ seq, score: 1 - (r.distances[i] ?? 1) })).sort(byScore);
  }

  /** The HNSW index over every vector, built now if missing and extended with the ones added since. */
  annIndex(onProgress?: (indexed: number, of: number) => void): Hnsw {
    if (this.hnsw === undefined) {
      const { HierarchicalNSW } = require('hnswlib-node') as typeof import('hnswlib-node');
      this.hnsw = new HierarchicalNSW('ip', this.dims);
      this.hnsw.initIndex(Math.max(this.count, 1024), HNSW_M, HNSW_EF_CONSTRUCTION, 100);
      this.indexed = 0;
    }
    const index = this.hnsw;
    if (this.indexed < this.count) {
      if (index.getMaxElements() < this.count)
        index.resizeIndex(Math.max(this.count, index.getMaxElements() * 2));
      const point: number[] = new Array<number>(this.dims);
      for (let row = this.indexed; row < this.count; row++) {
        const base = row * this.dims;
        for (let j = 0; j < this.dims; j++) point[j] = this.slab[base + j] as number;
        index.addPoint(point, this.seqs[row] as number);
        if (onProgress !== undefined && (row + 1) % 50_000 === 0) onProgress(row + 1, this.count);
      }
      this.indexed = this.count;
    }
    return index;
  }

  private dot(row: number, q: Float32Array): number {
    const s = this.slab;
    const base = row * this.dims;
    const n = this.dims;
    let a = 0;
    let b = 0;
    let c = 0;
    let d = 0;
    let j = 0;
    for (; j + 3 < n; j += 4) {
      a += (s[base + j] as number) * (q[j] as number);
      b += (s[base + j + 1] as number) * (q[j + 1] as number);
      c += (s[base + j + 2] as number) * (q[j + 2] as number);
      d += (s[base + j + 3] as number) * (q[j + 3] as number);
    }
    for (; j < n; j++) a += (s[base + j] as number) * (q[j] as number);
    return a + b + c + d;
  }

  private grow(capacity: number): void {
    const slab = new Float32Array(capacity * this.dims);
    slab.set(this.slab.subarray(0, this.count * this.dims));
    const seqs = new Float64Array(capacity);
    seqs.set(this.seqs.subarray(0, this.count));
    this.slab = slab;
    this.seqs = seqs;
  }
}

function byScore(a: Hit, b: Hit): number {
  return b.score - a.score || a.seq - b.seq;
}
