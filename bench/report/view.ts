import type { GroupRecordFile, LoadedResults } from './results.js';

// What a claim's evaluation reads: the numbers of the results files, by group and case. Asking for
// a group or case that is not there throws NotMeasured, which the report turns into a line saying
// what is missing, so a claim is never answered from a number that does not exist.

export class NotMeasured extends Error {}

export interface RatioNumbers {
  ratio: number;
  low: number;
  high: number;
}

export class ResultsView {
  constructor(private readonly loaded: LoadedResults) {}

  record(group: string): GroupRecordFile {
    const r = this.loaded.records.get(group);
    if (r === undefined) {
      const problem = this.loaded.problems.find((p) => p.group === group);
      throw new NotMeasured(problem?.message ?? `no results for group ${group}`);
    }
    return r;
  }

  has(group: string, caseName?: string): boolean {
    const r = this.loaded.records.get(group);
    return r !== undefined && (caseName === undefined || r.cases.some((c) => c.name === caseName));
  }

  private case(group: string, name: string): GroupRecordFile['cases'][number] {
    const c = this.record(group).cases.find((x) => x.name === name);
    if (c === undefined)
      throw new NotMeasured(`group ${group} has no case ${name} (its results file may predate it)`);
    return c;
  }

  /** The case's median duration in nanoseconds. */
  median(group: string, name: string): number {
    return this.case(group, name).summary.median;
  }

  /** p25 and p75 in nanoseconds. */
  quartiles(group: string, name: string): [number, number] {
    const s = this.case(group, name).summary;
    return [s.p25, s.p75];
  }

  /** The case's median against its group's baseline, with the bootstrap interval the harness computed. */
  ratio(group: string, name: string): RatioNumbers {
    const c = this.case(group, name);
    if (c.ratio === undefined)
      throw new NotMeasured(`${group}/${name} is the group's baseline: it has no ratio`);
    return { ratio: c.ratio.ratio, low: c.ratio.low, high: c.ratio.high };
  }

  /** The measured samples (ns). */
  samples(group: string, name: string): number[] {
    const s = this.record(group).samples[name];
    if (s === undefined) throw new NotMeasured(`group ${group} has no samples of ${name}`);
    return s.measuredNs;
  }

  fact(group: string, key: string): number {
    const f = this.record(group).facts?.[key];
    if (f === undefined) throw new NotMeasured(`group ${group} records no fact ${key} (run it again)`);
    return f;
  }

  /** A number from one of the group's notes, by a pattern whose first group is the number (commas allowed). */
  noteNumber(group: string, pattern: RegExp): number {
    for (const note of this.record(group).notes) {
      const m = pattern.exec(note);
      if (m?.[1] !== undefined) return Number(m[1].replaceAll(',', ''));
    }
    throw new NotMeasured(`no note of group ${group} matches ${String(pattern)}`);
  }

  caseNames(group: string): string[] {
    return this.record(group).cases.map((c) => c.name);
  }

  /** NUMA nodes of the machine the records were measured on (the first record that says). */
  numaNodes(): number | undefined {
    for (const r of this.loaded.records.values()) {
      if (typeof r.machine.numaNodes === 'number') return r.machine.numaNodes;
    }
    return undefined;
  }
}

/** A duration for people: ns, µs, ms or s with three significant digits. */
export function duration(ns: number): string {
  const abs = Math.abs(ns);
  if (abs < 1e3) return `${sig(ns)} ns`;
  if (abs < 1e6) return `${sig(ns / 1e3)} µs`;
  if (abs < 1e9) return `${sig(ns / 1e6)} ms`;
  return `${sig(ns / 1e9)} s`;
}

export function sig(n: number, digits = 3): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 10 ** digits) return Math.round(n).toLocaleString('en-US');
  return String(Number(n.toPrecision(digits)));
}

export function times(r: RatioNumbers): string {
  return `${sig(r.ratio)}× (95% CI ${sig(r.low)}-${sig(r.high)})`;
}
