import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import {
  bootstrapMedianRatio,
  seededRandom,
  summarize,
  type RatioEstimate,
  type SampleSummary,
} from './statistics.js';

/** One operation to time. */
export interface BenchCase {
  name: string;
  /** Runs once before the warm-up. */
  setup?: () => Promise<void>;
  /** Runs before each repetition, untimed (e.g. the plan an apply-only case then applies). */
  prepare?: () => Promise<void>;
  /** Performs exactly one operation; it may throw when the operation did not do what was meant (that aborts the run). */
  run: () => Promise<void>;
  /** Runs once after the last measured repetition, also when the run failed. */
  teardown?: () => Promise<void>;
}

/** Cases measured together, interleaved, and compared against one of them. */
export interface BenchGroup {
  name: string;
  description: string;
  /** The case every other case's median is divided by. */
  baseline: string;
  /** Brings up what the cases need and returns them; on failure it must undo what it started. */
  start: () => Promise<StartedGroup>;
  /** Why this group takes long (minutes): `npm run bench` runs it only with --long, or when named. */
  long?: string;
}

/** A group ready to measure. */
export interface StartedGroup {
  cases: BenchCase[];
  /** Facts observed while starting (e.g. a one-off cold-start cost) that belong in the report. */
  notes: string[];
  /** Facts observed after the last measured repetition (e.g. whether a service restarted meanwhile). */
  notesAfter?: () => Promise<string[]>;
  /** Named numbers that are not durations (compression ratios, recall, bytes per vector), for the report. */
  facts?: () => Record<string, number> | Promise<Record<string, number>>;
  /** Undoes start; always called, also after a failure or an interrupt. */
  stop: () => Promise<void>;
}

/** How many repetitions, and the seed of every random choice (order, bootstrap). */
export interface RunOptions {
  reps: number;
  warmup: number;
  seed: number;
  /** Bootstrap resamples for each ratio's confidence interval. */
  resamples: number;
  /** Stops the run between two operations (SIGINT). */
  signal?: AbortSignal;
}

/** Where and on what the numbers were measured. */
export interface MachineInfo {
  date: string;
  node: string;
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  kernel: string;
  /** 1, 5 and 15 min load averages before and after the measurement: other work on the machine shows up here. */
  loadAverage: { before: number[]; after: number[] };
  gitCommit: string | null;
  /** Whether the working tree had uncommitted changes, so the commit alone does not describe the code. */
  gitDirty: boolean | null;
  /** NUMA nodes the kernel reports (/sys/devices/system/node), null where sysfs does not say. */
  numaNodes?: number | null;
  /** The filesystem type the groups' scratch data lives on (the temporary directory), e.g. "ext4", "tmpfs". */
  filesystem?: string;
  /** The command that produced the record. */
  command?: string;
  /** Wall time of the whole group: start (sandboxes, data), every round, stop. */
  elapsedSeconds?: number;
}

/** Statistics of one case; durations in nanoseconds. */
export interface CaseResult {
  name: string;
  summary: SampleSummary;
  /** The case's very first timed run (the first warm-up one, when there is warm-up): shows cold-start cost. */
  firstRunNs: number;
  /** Against the group's baseline; absent for the baseline itself. */
  ratio?: RatioEstimate;
}

/** One run of a group: what the summary table shows and the JSON file keeps. */
export interface GroupResult {
  group: string;
  description: string;
  baseline: string;
  unit: 'ns';
  options: { reps: number; warmup: number; seed: number; resamples: number };
  machine: MachineInfo;
  notes: string[];
  /** What the group's facts() returned (absent when it has none). */
  facts?: Record<string, number>;
  cases: CaseResult[];
}

/** The raw record of a run: the summary plus every duration measured, in the order taken. */
export interface GroupRecord extends GroupResult {
  /** Case names; the schedule refers to cases by their index here. */
  caseOrder: string[];
  /** For each round (warm-up rounds first), the order its cases ran in. */
  schedule: number[][];
  /** Per case: warm-up durations (not in the statistics) and measured durations, one per round. */
  samples: Record<string, { warmupNs: number[]; measuredNs: number[] }>;
}

/**
 * The order of every round: each round runs every case exactly once, in an order shuffled with a
 * seeded PRNG, so slow drift (thermal, page cache, another process) spreads evenly over the cases
 * and no case always follows the same neighbour.
 */
export function interleavedSchedule(caseCount: number, rounds: number, seed: number): number[][] {
  const random = seededRandom(seed);
  const schedule: number[][] = [];
  for (let r = 0; r < rounds; r++) {
    const order = Array.from({ length: caseCount }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    schedule.push(order);
  }
  return schedule;
}

/** Thrown when the run's signal stops it between two operations. */
export class BenchInterrupted extends Error {
  constructor() {
    super('interrupted');
  }
}

/** Starts a group, measures its cases interleaved, stops it, and returns the raw record. */
export async function runGroup(group: BenchGroup, opts: RunOptions): Promise<GroupRecord> {
  const machine = machineInfo();
  const t0 = process.hrtime.bigint();
  const started = await group.start();
  let record: GroupRecord;
  try {
    record = await measure(group, started, opts, machine);
  } finally {
    await started.stop();
  }
  machine.elapsedSeconds = Math.round(Number(process.hrtime.bigint() - t0) / 1e7) / 100;
  return record;
}

async function measure(
  group: BenchGroup,
  started: StartedGroup,
  opts: RunOptions,
  machine: MachineInfo,
): Promise<GroupRecord> {
  const { cases } = started;
  const baseline = cases.find((c) => c.name === group.baseline);
  if (baseline === undefined) {
    throw new Error(`group ${group.name}: baseline ${group.baseline} is not one of its cases`);
  }
  if (new Set(cases.map((c) => c.name)).size !== cases.length) {
    throw new Error(`group ${group.name}: two cases share a name, so their samples would mix`);
  }
  const schedule = interleavedSchedule(cases.length, opts.warmup + opts.reps, opts.seed);
  const durations = cases.map(() => [] as number[]);
  const setUp: BenchCase[] = [];
  try {
    for (const c of cases) {
      await c.setup?.();
      setUp.push(c);
    }
    for (const order of schedule) {
      for (const index of order) {
        if (opts.signal?.aborted === true) throw new BenchInterrupted();
        const c = cases[index] as BenchCase;
        try {
          await c.prepare?.();
        } catch (e) {
          throw new Error(`case ${c.name} (prepare): ${e instanceof Error ? e.message : String(e)}`, {
            cause: e,
          });
        }
        const t0 = process.hrtime.bigint();
        try {
          await c.run();
        } catch (e) {
          throw new Error(`case ${c.name}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        }
        const elapsed = process.hrtime.bigint() - t0;
        (durations[index] as number[]).push(Number(elapsed));
      }
    }
  } finally {
    for (const c of setUp.reverse()) await c.teardown?.();
  }

  machine.loadAverage.after = roundedLoad();
  const notes = [...started.notes, ...((await started.notesAfter?.()) ?? [])];
  const facts = await started.facts?.();

  const samples: GroupRecord['samples'] = {};
  cases.forEach((c, i) => {
    const all = durations[i] as number[];
    samples[c.name] = { warmupNs: all.slice(0, opts.warmup), measuredNs: all.slice(opts.warmup) };
  });
  const baselineSamples = samples[baseline.name]?.measuredNs ?? [];
  const results: CaseResult[] = cases.map((c, i) => {
    const measured = samples[c.name]?.measuredNs ?? [];
    const firstRunNs = (durations[i] as number[])[0] as number;
    const result: CaseResult = { name: c.name, summary: summarize(measured), firstRunNs };
    if (c !== baseline) {
      // each case gets its own stream, so adding a case does not change the others' intervals
      const ratioSeed = (opts.seed + 7919 * (i + 1)) >>> 0;
      result.ratio = bootstrapMedianRatio(measured, baselineSamples, {
        resamples: opts.resamples,
        seed: ratioSeed,
        level: 0.95,
      });
    }
    return result;
  });
  return {
    group: group.name,
    description: group.description,
    baseline: baseline.name,
    unit: 'ns',
    options: { reps: opts.reps, warmup: opts.warmup, seed: opts.seed, resamples: opts.resamples },
    machine,
    notes,
    ...(facts !== undefined ? { facts } : {}),
    cases: results,
    caseOrder: cases.map((c) => c.name),
    schedule,
    samples,
  };
}

/** The summary part of a record (no raw samples), as `--json` prints it. */
export function resultOf(record: GroupRecord): GroupResult {
  const { group, description, baseline, unit, options, machine, notes, cases } = record;
  return { group, description, baseline, unit, options, machine, notes, cases };
}

/**
 * Writes the record to `<dir>/<group>.json`, replacing the previous run of that group. Written to
 * a temporary file and renamed, so an interrupted write never leaves half a document.
 */
export function writeRecord(dir: string, record: GroupRecord): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${record.group}.json`);
  const partial = `${file}.partial`;
  writeFileSync(partial, `${readableJson(record)}\n`);
  renameSync(partial, file);
  return file;
}

/** Indented JSON, except that arrays of plain numbers stay on one line: thousands of samples stay scrollable. */
export function readableJson(value: unknown, indent = ''): string {
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === 'number')) return JSON.stringify(value);
    if (value.length === 0) return '[]';
    const inner = `${indent}  `;
    return `[\n${value.map((v: unknown) => inner + readableJson(v, inner)).join(',\n')}\n${indent}]`;
  }
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    const inner = `${indent}  `;
    const lines = entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${readableJson(v, inner)}`);
    return `{\n${lines.join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}

/** A duration in ns as people read it: ns, µs or ms with three significant digits. */
export function formatDuration(ns: number): string {
  if (ns < 1_000) return `${ns.toFixed(0)} ns`;
  if (ns < 1_000_000) return `${(ns / 1_000).toPrecision(3)} µs`;
  if (ns < 1_000_000_000) return `${(ns / 1_000_000).toPrecision(3)} ms`;
  return `${(ns / 1_000_000_000).toPrecision(3)} s`;
}

/** The summary as a plain-text table (also valid Markdown), followed by the group's notes. */
export function formatTable(result: GroupResult): string {
  const header = [
    'case',
    'n',
    'median',
    'mean',
    'min',
    'p10',
    'p90',
    'IQR',
    'IQR/median',
    `ratio vs ${result.baseline}`,
    '95% CI',
  ];
  const rows = result.cases.map((c) => {
    const s = c.summary;
    const ratio =
      c.ratio === undefined
        ? ['1 (baseline)', '']
        : [`${c.ratio.ratio.toFixed(2)}×`, `${c.ratio.low.toFixed(2)}–${c.ratio.high.toFixed(2)}`];
    return [
      c.name,
      String(s.n),
      ...[s.median, s.mean, s.min, s.p10, s.p90, s.iqr].map(formatDuration),
      `${(s.relativeSpread * 100).toFixed(1)} %`,
      ...ratio,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  const m = result.machine;
  const firstRuns = result.cases.map((c) => `${c.name} ${formatDuration(c.firstRunNs)}`).join(', ');
  return [
    line(header),
    rule,
    ...rows.map(line),
    '',
    `first run of each case (cold: warm-up round 1 when there is one): ${firstRuns}`,
    ...result.notes.map((n) => `note: ${n}`),
    `machine: ${m.cpuModel}, ${m.cores} cores, Node ${m.node}, kernel ${m.kernel}, ` +
      `load average ${m.loadAverage.before.join('/')} before, ${m.loadAverage.after.join('/')} after; ` +
      `commit ${m.gitCommit?.slice(0, 12) ?? 'unknown'}${m.gitDirty === true ? ' + uncommitted changes' : ''}; ${m.date}`,
  ].join('\n');
}

/** Node, CPU, kernel, load and the code's commit, read where they are (never guessed). */
export function machineInfo(): MachineInfo {
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpuModel: cpuModel(),
    cores: availableParallelism(),
    memoryBytes: totalmem(),
    kernel: release(),
    loadAverage: { before: roundedLoad(), after: [] },
    gitCommit: git(['rev-parse', 'HEAD']),
    // the bench's own output (results, report, plots) does not make the measured code uncommitted
    gitDirty: ((status) => (status === null ? null : status !== ''))(
      git([
        'status',
        '--porcelain',
        '--',
        ':(top)',
        ':(top,exclude)bench/results',
        ':(top,exclude)bench/REPORT.md',
        ':(top,exclude)bench/plots',
      ]),
    ),
    numaNodes: numaNodeCount(),
    filesystem: filesystemOf(tmpdir()),
    command: ['node', ...process.argv.slice(1).map((a) => relative(process.cwd(), a) || a)].join(' '),
  };
}

function numaNodeCount(): number | null {
  try {
    return readdirSync('/sys/devices/system/node').filter((d) => /^node\d+$/.test(d)).length || null;
  } catch {
    return null;
  }
}

/** The type of the filesystem that holds path: the longest mount point above it in /proc/self/mounts. */
export function filesystemOf(path: string): string {
  try {
    let best = { point: '', type: 'unknown' };
    for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const [, point, type] = line.split(' ');
      if (point === undefined || type === undefined) continue;
      const inside = path === point || path.startsWith(point.endsWith('/') ? point : `${point}/`);
      if (inside && point.length >= best.point.length) best = { point, type };
    }
    return best.type;
  } catch {
    return 'unknown (/proc/self/mounts unreadable)';
  }
}

function roundedLoad(): number[] {
  return loadavg().map((l) => Math.round(l * 100) / 100);
}

function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return match?.[1]?.trim() ?? 'unknown (no "model name" in /proc/cpuinfo)';
  } catch {
    return 'unknown (/proc/cpuinfo unreadable)';
  }
}

/** git's trimmed output run in the project, or null outside a work tree or without git. */
function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, {
      cwd: import.meta.dirname,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      // a status check must not rewrite the index of a tree that others are working in
      env: { ...process.env, GIT_OPTIONAL_LOCKS: '0' },
    }).trim();
  } catch {
    return null;
  }
}

/**
 * A record of durations measured elsewhere (the console's e2e tests time the browser with its own
 * clock): the same file shape as a bench run, so the report reads it like any group. Each case's
 * samples are in nanoseconds; the first case is the baseline.
 */
export function recordOfSamples(o: {
  group: string;
  description: string;
  cases: Record<string, number[]>;
  notes?: string[];
  facts?: Record<string, number>;
  seed?: number;
}): GroupRecord {
  const names = Object.keys(o.cases);
  const baseline = names[0];
  if (baseline === undefined) throw new Error(`group ${o.group}: no cases`);
  const seed = o.seed ?? 20_240_601;
  const base = o.cases[baseline] ?? [];
  const machine = machineInfo();
  machine.loadAverage.after = roundedLoad();
  const samples: GroupRecord['samples'] = {};
  for (const n of names) samples[n] = { warmupNs: [], measuredNs: o.cases[n] ?? [] };
  const rounds = Math.max(...names.map((n) => (o.cases[n] ?? []).length));
  return {
    group: o.group,
    description: o.description,
    baseline,
    unit: 'ns',
    options: { reps: rounds, warmup: 0, seed, resamples: 2000 },
    machine,
    notes: o.notes ?? [],
    ...(o.facts !== undefined ? { facts: o.facts } : {}),
    cases: names.map((n, i) => {
      const measured = o.cases[n] ?? [];
      const result: CaseResult = { name: n, summary: summarize(measured), firstRunNs: measured[0] ?? 0 };
      // a ratio is of paired rounds: only for cases measured as often as the baseline
      if (n !== baseline && measured.length > 0 && measured.length === base.length) {
        result.ratio = bootstrapMedianRatio(measured, base, {
          resamples: 2000,
          seed: (seed + 7919 * (i + 1)) >>> 0,
          level: 0.95,
        });
      }
      return result;
    }),
    caseOrder: names,
    schedule: [],
    samples,
  };
}
