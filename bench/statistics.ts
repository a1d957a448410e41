/** A seeded pseudo-random source returning floats in [0, 1). */
export type Random = () => number;

/**
 * mulberry32: tiny, fast and good enough to shuffle and resample; what matters here is that one
 * seed always gives the same sequence, so a run's schedule and confidence intervals are reproducible.
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The values in a new array, ascending. */
export function sortedAscending(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/**
 * The p-quantile (0 ≤ p ≤ 1) of ascending values, interpolating linearly between the two nearest
 * ranks (Hyndman & Fan type 7, the default of R and NumPy), so results compare with other tools.
 */
export function quantileOfSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('quantile of no values');
  if (!(p >= 0 && p <= 1)) throw new RangeError(`quantile position ${p} is outside [0, 1]`);
  const position = (sorted.length - 1) * p;
  const below = Math.floor(position);
  const lower = sorted[below] as number;
  const upper = sorted[Math.min(below + 1, sorted.length - 1)] as number;
  return lower + (upper - lower) * (position - below);
}

/** The median of values in any order. */
export function median(values: readonly number[]): number {
  return quantileOfSorted(sortedAscending(values), 0.5);
}

/** Location and spread of one case's samples, in the samples' unit. */
export interface SampleSummary {
  n: number;
  median: number;
  mean: number;
  min: number;
  max: number;
  p10: number;
  p25: number;
  p75: number;
  p90: number;
  /** p75 − p25. */
  iqr: number;
  /** IQR / median: spread that compares across cases of very different size. */
  relativeSpread: number;
}

/** Summarises samples; needs at least one. */
export function summarize(samples: readonly number[]): SampleSummary {
  const sorted = sortedAscending(samples);
  const q = (p: number): number => quantileOfSorted(sorted, p);
  const med = q(0.5);
  const iqr = q(0.75) - q(0.25);
  return {
    n: sorted.length,
    median: med,
    mean: sorted.reduce((sum, v) => sum + v, 0) / sorted.length,
    min: sorted[0] as number,
    max: sorted[sorted.length - 1] as number,
    p10: q(0.1),
    p25: q(0.25),
    p75: q(0.75),
    p90: q(0.9),
    iqr,
    relativeSpread: med === 0 ? 0 : iqr / med,
  };
}

/** A ratio of medians with a bootstrap confidence interval. */
export interface RatioEstimate {
  ratio: number;
  low: number;
  high: number;
  /** E.g. 0.95. */
  level: number;
  resamples: number;
  seed: number;
}

/**
 * median(samples) / median(baseline) with a percentile-bootstrap confidence interval. The two
 * arrays are paired by index (sample i of each was measured in the same interleaved round), and
 * whole rounds are resampled, so slow drift that hit both cases alike does not widen the interval.
 */
export function bootstrapMedianRatio(
  samples: readonly number[],
  baseline: readonly number[],
  opts: { resamples: number; seed: number; level: number },
): RatioEstimate {
  const n = samples.length;
  if (n === 0 || baseline.length !== n) {
    throw new RangeError(
      `paired bootstrap needs two equally long, non-empty arrays (got ${n} and ${baseline.length})`,
    );
  }
  const random = seededRandom(opts.seed);
  const ratios = new Float64Array(opts.resamples);
  const a = new Float64Array(n);
  const b = new Float64Array(n);
  for (let r = 0; r < opts.resamples; r++) {
    for (let i = 0; i < n; i++) {
      const round = Math.floor(random() * n);
      a[i] = samples[round] as number;
      b[i] = baseline[round] as number;
    }
    ratios[r] = medianInPlace(a) / medianInPlace(b);
  }
  ratios.sort();
  const tail = (1 - opts.level) / 2;
  const sortedRatios = Array.from(ratios);
  return {
    ratio: median(samples) / median(baseline),
    low: quantileOfSorted(sortedRatios, tail),
    high: quantileOfSorted(sortedRatios, 1 - tail),
    level: opts.level,
    resamples: opts.resamples,
    seed: opts.seed,
  };
}

/** Median of a scratch buffer, sorting it in place (the bootstrap's inner loop must not allocate). */
function medianInPlace(values: Float64Array): number {
  values.sort();
  const mid = (values.length - 1) / 2;
  return ((values[Math.floor(mid)] as number) + (values[Math.ceil(mid)] as number)) / 2;
}
