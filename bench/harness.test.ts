import { describe, expect, it } from 'vitest';
import { formatDuration, interleavedSchedule, readableJson } from './harness.js';
import { bootstrapMedianRatio, median, quantileOfSorted, seededRandom, summarize } from './statistics.js';

const oneToTen = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

describe('percentiles (linear interpolation between ranks, as R and NumPy by default)', () => {
  it('gives the known quantiles of 1..10', () => {
    expect(quantileOfSorted(oneToTen, 0)).toBe(1);
    expect(quantileOfSorted(oneToTen, 1)).toBe(10);
    expect(quantileOfSorted(oneToTen, 0.5)).toBe(5.5);
    expect(quantileOfSorted(oneToTen, 0.1)).toBeCloseTo(1.9, 12);
    expect(quantileOfSorted(oneToTen, 0.25)).toBeCloseTo(3.25, 12);
    expect(quantileOfSorted(oneToTen, 0.75)).toBeCloseTo(7.75, 12);
    expect(quantileOfSorted(oneToTen, 0.9)).toBeCloseTo(9.1, 12);
  });

  it('takes the middle value of an odd count and the mean of the middle two of an even one, in any order', () => {
    expect(median([7, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([42])).toBe(42);
  });

  it('refuses empty input and positions outside [0, 1]', () => {
    expect(() => quantileOfSorted([], 0.5)).toThrow(RangeError);
    expect(() => quantileOfSorted([1], 1.5)).toThrow(RangeError);
  });
});

describe('summarize', () => {
  it('computes location and spread of a shuffled 1..10', () => {
    const s = summarize([10, 3, 7, 1, 9, 5, 2, 8, 4, 6]);
    expect(s).toMatchObject({ n: 10, median: 5.5, mean: 5.5, min: 1, max: 10 });
    expect(s.p10).toBeCloseTo(1.9, 12);
    expect(s.p90).toBeCloseTo(9.1, 12);
    expect(s.iqr).toBeCloseTo(4.5, 12);
    expect(s.relativeSpread).toBeCloseTo(4.5 / 5.5, 12);
  });

  it('reports zero spread for constant samples', () => {
    expect(summarize([3, 3, 3, 3])).toMatchObject({ median: 3, iqr: 0, relativeSpread: 0, p10: 3, p90: 3 });
  });
});

describe('interleaved schedule', () => {
  it('runs every case exactly once per round, so every case gets the same number of samples', () => {
    const schedule = interleavedSchedule(5, 200, 1);
    expect(schedule).toHaveLength(200);
    for (const round of schedule) expect([...round].sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('spreads each case evenly over the positions in a round', () => {
    const rounds = 5000;
    const timesAt = new Map<string, number>();
    for (const round of interleavedSchedule(4, rounds, 7)) {
      round.forEach((caseIndex, position) => {
        const key = `case ${caseIndex} at ${position}`;
        timesAt.set(key, (timesAt.get(key) ?? 0) + 1);
      });
    }
    expect(timesAt.size).toBe(16);
    // expected 1250 each; ±150 is over 5 standard deviations of a fair shuffle
    for (const count of timesAt.values()) expect(Math.abs(count - rounds / 4)).toBeLessThan(150);
  });

  it('is the same for the same seed and differs for another', () => {
    expect(interleavedSchedule(3, 50, 99)).toEqual(interleavedSchedule(3, 50, 99));
    expect(interleavedSchedule(3, 50, 99)).not.toEqual(interleavedSchedule(3, 50, 100));
  });
});

describe('bootstrap of the ratio of medians', () => {
  const random = seededRandom(5);
  const baseline = Array.from({ length: 200 }, () => 100 + random() * 20);
  const doubled = baseline.map((v) => 2 * v + random() * 10);
  const opts = { resamples: 1000, seed: 123, level: 0.95 };

  it('gives the same interval for the same seed', () => {
    expect(bootstrapMedianRatio(doubled, baseline, opts)).toEqual(
      bootstrapMedianRatio(doubled, baseline, opts),
    );
  });

  it('draws a different resampling for another seed', () => {
    const other = bootstrapMedianRatio(doubled, baseline, { ...opts, seed: 124 });
    expect(other.ratio).toBe(bootstrapMedianRatio(doubled, baseline, opts).ratio);
    expect([other.low, other.high]).not.toEqual([
      bootstrapMedianRatio(doubled, baseline, opts).low,
      bootstrapMedianRatio(doubled, baseline, opts).high,
    ]);
  });

  it('puts the point estimate inside a narrow interval around the true ratio', () => {
    const r = bootstrapMedianRatio(doubled, baseline, opts);
    expect(r.ratio).toBeCloseTo(median(doubled) / median(baseline), 12);
    expect(r.low).toBeLessThanOrEqual(r.ratio);
    expect(r.high).toBeGreaterThanOrEqual(r.ratio);
    expect(r.low).toBeGreaterThan(1.9);
    expect(r.high).toBeLessThan(2.2);
  });

  it('gives exactly 1 for a case identical to its baseline', () => {
    expect(bootstrapMedianRatio(baseline, baseline, opts)).toMatchObject({ ratio: 1, low: 1, high: 1 });
  });

  it('refuses arrays that are not paired', () => {
    expect(() => bootstrapMedianRatio([1, 2], [1], opts)).toThrow(RangeError);
  });
});

describe('output', () => {
  it('keeps number arrays on one line and stays parseable', () => {
    const value = {
      a: [1, 2, 3],
      b: {
        c: 'x',
        d: [
          [0, 1],
          [1, 0],
        ],
      },
      skipped: undefined,
    };
    const text = readableJson(value);
    expect(text).toContain('"a": [1,2,3]');
    expect(JSON.parse(text)).toEqual({
      a: [1, 2, 3],
      b: {
        c: 'x',
        d: [
          [0, 1],
          [1, 0],
        ],
      },
    });
  });

  it('names durations in the unit people read', () => {
    expect(formatDuration(950)).toBe('950 ns');
    expect(formatDuration(212_400)).toBe('212 µs');
    expect(formatDuration(12_345_678)).toBe('12.3 ms');
  });
});
