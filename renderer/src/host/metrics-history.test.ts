import { describe, expect, it } from 'vitest';
import type { Stats } from '../../../main/common/contract/index.js';
import { HOST_SERIES, MetricsHistory } from './metrics-history.js';

const sample = (i: number, rssKb: number): Stats =>
  ({
    time: new Date(Date.UTC(2026, 11, 3, 12, 0, i)).toISOString(),
    core: { rss_kb: rssKb },
    nodes: [{ id: 0, total_kb: 8 * 1024 * 1024, free_kb: 4 * 1024 * 1024 }],
    files: [
      { name: 'audit.sqlite', bytes: 4096, resident: 0.5 },
      { name: 'x', bytes: 4096, resident: null },
    ],
  }) as unknown as Stats;

describe('the live panel history', () => {
  it('keeps the newest samples in order, bounded by its capacity', () => {
    const h = new MetricsHistory(HOST_SERIES, 3);
    for (let i = 0; i < 5; i++) h.push(sample(i, 1024 * (i + 1)));
    const [times, rss, free, resident] = h.data();
    expect(h.length).toBe(3);
    expect(times?.map((t) => new Date(t * 1000).getUTCSeconds())).toEqual([2, 3, 4]);
    expect(rss).toEqual([3, 4, 5]);
    expect(free).toEqual([4096, 4096, 4096]);
    expect(resident).toEqual([50, 50, 50]); // only the measured file counts
  });

  it('keeps one measurement once, and marks what was not measured', () => {
    const h = new MetricsHistory(HOST_SERIES, 4);
    expect(h.push(sample(1, 1024))).toBe(true);
    expect(h.push(sample(1, 1024))).toBe(false);
    h.push({ ...sample(2, 2048), nodes: [], files: [] } as Stats);
    const [, , free, resident] = h.data();
    expect(free?.[1]).toBeNaN();
    expect(resident?.[1]).toBeNaN();
  });
});
