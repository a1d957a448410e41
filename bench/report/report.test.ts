import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { XMLValidator } from 'fast-xml-parser';
import { afterAll, describe, expect, it } from 'vitest';
import { generateReport } from './generate.js';
import { gitStaleCheck, loadResults } from './results.js';

const dir = mkdtempSync(join(tmpdir(), 'opdbus-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const summary = (median: number) => ({
  n: 3,
  median,
  mean: median,
  min: median * 0.9,
  max: median * 1.1,
  p10: median * 0.92,
  p25: median * 0.95,
  p75: median * 1.05,
  p90: median * 1.08,
  iqr: median * 0.1,
  relativeSpread: 0.1,
});

/** A record as harness.ts writes it, for the page-cache group, with a known cold/hot ratio. */
function pagecacheRecord(commit: string | null): Record<string, unknown> {
  return {
    group: 'native-pagecache',
    description: 'hot vs cold',
    baseline: 'read-hot',
    unit: 'ns',
    options: { reps: 3, warmup: 0, seed: 1, resamples: 100 },
    machine: {
      date: '2026-12-03T12:00:00.000Z',
      node: 'v20.20.2',
      cpuModel: 'Test CPU',
      cores: 2,
      memoryBytes: 2 ** 30,
      kernel: '6.1.0',
      loadAverage: { before: [0, 0, 0], after: [0, 0, 0] },
      gitCommit: commit,
      gitDirty: false,
      numaNodes: 1,
      filesystem: 'ext4',
      command: 'node dist/bench/run.js native-pagecache',
      elapsedSeconds: 90,
    },
    notes: [],
    cases: [
      { name: 'read-hot', summary: summary(10_000_000), firstRunNs: 1 },
      {
        name: 'read-cold',
        summary: summary(41_000_000),
        firstRunNs: 1,
        ratio: { ratio: 4.1, low: 3.9, high: 4.3, level: 0.95, resamples: 100, seed: 2 },
      },
    ],
    caseOrder: ['read-hot', 'read-cold'],
    schedule: [[0, 1]],
    samples: {
      'read-hot': { warmupNs: [], measuredNs: [9_500_000, 10_000_000, 10_500_000] },
      'read-cold': { warmupNs: [], measuredNs: [39_000_000, 41_000_000, 43_000_000] },
    },
  };
}

describe('bench report generator', () => {
  it('reports the numbers the results files hold, and names a missing, malformed or stale file in a line', () => {
    const results = join(dir, 'results');
    rmSync(results, { recursive: true, force: true });
    mkdirSync(results);
    writeFileSync(join(results, 'native-pagecache.json'), JSON.stringify(pagecacheRecord('0'.repeat(40))));
    writeFileSync(join(results, 'storage-zstd.json'), '{"group": "storage-zstd", "cases": [');
    const wrongShape = { ...pagecacheRecord(null), group: 'native-pinning', unit: 'ms' };
    writeFileSync(join(results, 'native-pinning.json'), JSON.stringify(wrongShape));

    const loaded = loadResults(
      results,
      ['native-pagecache', 'storage-zstd', 'native-pinning', 'embed'],
      gitStaleCheck(resolve('.')),
    );
    const report = generateReport(loaded, {
      now: new Date('2026-12-03T13:00:00Z'),
      groups: ['native-pagecache'],
    });
    const md = report.markdown;

    // the page-cache claim is answered from the file: 10 ms hot, 41 ms cold, 4.1x
    expect(md).toMatch(/hot 10 ms, cold 41 ms: cold\/hot 4\.1× \(95% CI 3\.9-4\.3\)/);
    expect(md).toMatch(/Page Cache → 50x.*\| real \|/);
    // malformed JSON, a wrong shape, a missing group, a commit git does not know: each one line
    expect(md).toMatch(/\*\*storage-zstd\*\* \(malformed\): bench\/results\/storage-zstd\.json is not JSON/);
    expect(md).toMatch(
      /\*\*native-pinning\*\* \(malformed\): bench\/results\/native-pinning\.json at \/unit: /,
    );
    expect(md).toMatch(/\*\*embed\*\* \(missing\): no bench\/results\/embed\.json/);
    expect(md).toMatch(
      /\*\*native-pagecache\*\* \(stale\): measured at commit 000000000000, which this repository does not have/,
    );
    // claims that need what is missing say so instead of inventing a number
    expect(md).toMatch(/Layer 1: Caching → 100x .*\| not measured yet \| no bench\/results\/embed\.json/);
    expect(md).toMatch(/NUMA → 1\.3x.*\| not measurable here \| this machine has 1 NUMA node/);
    // the machine table says where the numbers come from
    expect(md).toContain(
      '| native-pagecache | 2026-12-03 12:00 | 000000000000 | Test CPU | 2 | 1 | 1.0 GiB | 6.1.0 | ext4 | 0 → 0 | 1.5 min | node dist/bench/run.js native-pagecache |',
    );
    expect(md).toMatch(/The timed groups \(1\) took 1\.5 min together/);
  });

  it('writes plots that are well-formed SVG and carry the numbers in their description', () => {
    const results = join(dir, 'results2');
    mkdirSync(results, { recursive: true });
    const rec = pagecacheRecord(null);
    writeFileSync(join(results, 'native-pagecache.json'), JSON.stringify(rec));
    const scaled = {
      ...pagecacheRecord(null),
      group: 'lxc',
      baseline: 'floor@10',
      cases: [10, 100, 1000].flatMap((n) => [
        { name: `floor@${n}`, summary: summary(n * 1e5), firstRunNs: 1 },
        {
          name: `plan@${n}`,
          summary: summary(n * 2e5),
          firstRunNs: 1,
          ratio: { ratio: 2, low: 1.9, high: 2.1, level: 0.95 },
        },
      ]),
      samples: {},
    };
    writeFileSync(join(results, 'lxc.json'), JSON.stringify(scaled));
    const loaded = loadResults(results, [], () => undefined);
    expect(loaded.problems).toEqual([]);
    const report = generateReport(loaded, { now: new Date(), groups: ['lxc', 'native-pagecache'] });
    expect([...report.plots.keys()].sort()).toEqual([
      'lxc-ratios.svg',
      'lxc-scale.svg',
      'native-pagecache-ratios.svg',
    ]);
    for (const [name, svg] of report.plots) expect(XMLValidator.validate(svg), name).toBe(true);
    const scale = report.plots.get('lxc-scale.svg') ?? '';
    expect(scale).toContain('plan: 10→2, 100→20, 1k→200'); // ms medians against size
    expect(report.markdown).toContain(
      '![lxc: cost against containers (median, p25-p75)](plots/lxc-scale.svg)',
    );
  });
});
