import type { GroupRecordFile } from './results.js';
import { boxPlot, linePlot, ratioPlot, type Series } from './svg.js';
import { NotMeasured, type ResultsView } from './view.js';

// The report's plots, made from the results files alone. Three families:
// - scaling: every group whose cases are named `<series>@<size>` or `<series>-<size>` (plan@1000, floor@1000) gets a
//   cost-against-size plot, one line per series, median with its p25-p75 whisker;
// - ratios: every group gets its cases' median ratios against the floor it measured in the same run;
// - distributions: the groups named here get box plots of their raw samples.

export interface Plot {
  id: string;
  title: string;
  svg: string;
}

const SIZED = /^(.+?)[@-](\d+)$/;

/** The `<series>@<size>` or `<series>-<size>` cases of a record as series (ms against size), or none. */
export function scalingSeries(record: GroupRecordFile): Series[] {
  const bySeries = new Map<string, Series>();
  for (const c of record.cases) {
    const m = SIZED.exec(c.name);
    if (m === null) continue;
    const name = m[1] as string;
    const series = bySeries.get(name) ?? { name, points: [] };
    series.points.push({
      x: Number(m[2]),
      y: c.summary.median / 1e6,
      low: c.summary.p25 / 1e6,
      high: c.summary.p75 / 1e6,
    });
    bySeries.set(name, series);
  }
  return [...bySeries.values()].filter((s) => s.points.length >= 2);
}

const SIZE_LABELS: Record<string, string> = {
  lxc: 'containers',
  openflow: 'flows',
  wireguard: 'mesh nodes',
  search: 'vectors',
  units: 'units or packages',
};

/** Distributions worth a box plot: group → the cases (all when empty). */
const DISTRIBUTIONS: Record<string, { title: string; cases?: string[] }> = {
  embed: { title: 'Embedding cache: text in → vector out, per tier (raw samples)' },
  hostname: { title: 'One change through the core: raw samples' },
  audit: { title: 'Audit log proofs at 1M entries: raw samples' },
};

export function plotsFor(v: ResultsView, groups: readonly string[]): Plot[] {
  const plots: Plot[] = [];
  for (const group of groups) {
    let record: GroupRecordFile;
    try {
      record = v.record(group);
    } catch (e) {
      if (e instanceof NotMeasured) continue;
      throw e;
    }
    const series = scalingSeries(record);
    if (series.length > 0) {
      const title = `${group}: cost against ${SIZE_LABELS[group] ?? 'size'} (median, p25-p75)`;
      plots.push({
        id: `${group}-scale`,
        title,
        svg: linePlot({ title, xLabel: SIZE_LABELS[group] ?? 'size', yLabel: 'ms per operation', series }),
      });
    }
    const rows = record.cases
      .filter((c) => c.ratio !== undefined)
      .map((c) => ({
        name: c.name,
        ratio: c.ratio?.ratio ?? 1,
        low: c.ratio?.low ?? 1,
        high: c.ratio?.high ?? 1,
      }));
    if (rows.length > 0) {
      const title = `${group}: each case against ${record.baseline}, measured in the same run`;
      plots.push({ id: `${group}-ratios`, title, svg: ratioPlot({ title, floor: record.baseline, rows }) });
    }
    const dist = DISTRIBUTIONS[group];
    if (dist !== undefined) {
      const names = dist.cases ?? record.cases.map((c) => c.name);
      const distRows = names
        .filter((n) => record.samples[n] !== undefined)
        .map((n) => ({ name: n, values: (record.samples[n]?.measuredNs ?? []).map((ns) => ns / 1e3) }));
      if (distRows.length > 0) {
        plots.push({
          id: `${group}-distribution`,
          title: dist.title,
          svg: boxPlot({ title: dist.title, xLabel: 'µs per operation (log scale)', rows: distRows }),
        });
      }
    }
  }
  return plots;
}
