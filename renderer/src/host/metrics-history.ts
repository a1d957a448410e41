import type { Stats } from '../../../main/common/contract/index.js';

// The live panel's charts plot the core's Metrics over time. The console may stay open for days,
// so the history is a fixed set of preallocated columns used as a ring: memory stays flat however
// many signals arrive (an e2e test replays an hour of them and compares the page's heap).

/** One plotted quantity: a label, its unit, and how to read it from a Stats sample (null: not measured). */
export interface MetricSeries {
  key: string;
  label: string;
  unit: string;
  read(s: Stats): number | null;
}

/** What the panel plots today; the embedder's cache and queue join these once the core reports them. */
export const HOST_SERIES: MetricSeries[] = [
  { key: 'rss', label: 'core resident memory', unit: 'MiB', read: (s) => s.core.rss_kb / 1024 },
  {
    key: 'free',
    label: 'free memory, all nodes',
    unit: 'MiB',
    read: (s) => (s.nodes.length === 0 ? null : s.nodes.reduce((a, n) => a + n.free_kb, 0) / 1024),
  },
  {
    key: 'resident',
    label: 'core files in the page cache',
    unit: '%',
    read: (s) => {
      const measured = s.files.filter((f) => f.resident !== null && f.bytes > 0);
      if (measured.length === 0) return null;
      // resident is the fraction of the file in the page cache: weigh each file by its size
      const total = measured.reduce((a, f) => a + f.bytes, 0);
      return (100 * measured.reduce((a, f) => a + (f.resident ?? 0) * f.bytes, 0)) / total;
    },
  },
];

type Tier = NonNullable<NonNullable<Stats['embedding']>['cache']>['memory'];

/** A tier's hit rate in percent, or null before any lookup. */
function hitRate(t: Tier | undefined): number | null {
  if (t === undefined || t.hits + t.misses === 0) return null;
  return (100 * t.hits) / (t.hits + t.misses);
}

/** The median of a latency histogram (the upper bound of the bucket that holds it), in µs. */
export function histogramMedian(h: { buckets: number[]; counts: number[] } | undefined): number | null {
  if (h === undefined) return null;
  const total = h.counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i] ?? 0;
    if (seen * 2 >= total) return h.buckets[i] ?? h.buckets.at(-1) ?? null;
  }
  return null;
}

/** The embedding cache and embedder: charted once the core reports them (after its first embedding). */
export const EMBEDDING_SERIES: MetricSeries[] = [
  {
    key: 'hit-memory',
    label: 'cache hit rate, memory tier',
    unit: '%',
    read: (s) => hitRate(s.embedding?.cache?.memory),
  },
  {
    key: 'hit-persistent',
    label: 'cache hit rate, persistent tier',
    unit: '%',
    read: (s) => hitRate(s.embedding?.cache?.persistent),
  },
  {
    key: 'latency-memory',
    label: 'memory-tier hit latency (median)',
    unit: 'µs',
    read: (s) => histogramMedian(s.embedding?.cache?.memory.latencyUs),
  },
  {
    key: 'latency-persistent',
    label: 'persistent-tier hit latency (median)',
    unit: 'µs',
    read: (s) => histogramMedian(s.embedding?.cache?.persistent.latencyUs),
  },
  {
    key: 'queue',
    label: "embedder's queue",
    unit: 'texts',
    read: (s) => s.embedding?.process?.queuedTexts ?? null,
  },
];

/** A bounded time series of Stats samples: the newest `capacity`, oldest first when read. */
export class MetricsHistory {
  private readonly times: Float64Array;
  private readonly columns: Float64Array[];
  private next = 0;
  private size = 0;
  private lastTime = '';

  constructor(
    readonly series: readonly MetricSeries[],
    readonly capacity = 720,
  ) {
    this.times = new Float64Array(capacity);
    this.columns = series.map(() => new Float64Array(capacity));
  }

  get length(): number {
    return this.size;
  }

  /** Adds a sample; the same measurement twice (Stats and then its Metrics signal) is kept once. */
  push(s: Stats): boolean {
    if (s.time === this.lastTime) return false;
    this.lastTime = s.time;
    this.times[this.next] = Date.parse(s.time) / 1000;
    this.series.forEach((m, i) => {
      const v = m.read(s);
      (this.columns[i] as Float64Array)[this.next] = v === null || !Number.isFinite(v) ? Number.NaN : v;
    });
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
    return true;
  }

  /** The samples in time order as uPlot wants them: [times, ...one array per series] (NaN: not measured). */
  data(): number[][] {
    const start = (this.next - this.size + this.capacity) % this.capacity;
    const ordered = (col: Float64Array): number[] => {
      const out = new Array<number>(this.size);
      for (let i = 0; i < this.size; i++) out[i] = col[(start + i) % this.capacity] as number;
      return out;
    };
    return [ordered(this.times), ...this.columns.map(ordered)];
  }
}
