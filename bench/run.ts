import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { auditGroup } from './groups/audit.js';
import { bundlesGroup } from './groups/bundles.js';
import { cacheIndexGroup } from './groups/cache-index.js';
import { defencesGroup } from './groups/defences.js';
import { embedGroup } from './groups/embed.js';
import { generatedGroup } from './groups/generated.js';
import { hostnameGroup } from './groups/hostname.js';
import { lxcGroup } from './groups/lxc.js';
import { nativePagecacheGroup } from './groups/native-pagecache.js';
import { nativePinningGroup } from './groups/native-pinning.js';
import { openflowApplyGroup, openflowGroup } from './groups/openflow.js';
import { searchBackfillGroup, searchGroup, searchLongGroup } from './groups/search.js';
import { storageVectorLayoutGroup } from './groups/storage-vector-layout.js';
import { storageZstdGroup } from './groups/storage-zstd.js';
import { wireguardGroup } from './groups/wireguard.js';
import { unitsGroup } from './groups/units.js';
import {
  BenchInterrupted,
  formatTable,
  resultOf,
  runGroup,
  writeRecord,
  type BenchGroup,
  type GroupResult,
} from './harness.js';

/** Every group `run.js` knows, in the order it runs them when none is named. */
const GROUPS: BenchGroup[] = [
  hostnameGroup,
  nativePinningGroup,
  nativePagecacheGroup,
  storageZstdGroup,
  storageVectorLayoutGroup,
  cacheIndexGroup,
  defencesGroup,
  auditGroup,
  lxcGroup,
  wireguardGroup,
  embedGroup,
  openflowGroup,
  openflowApplyGroup,
  searchGroup,
  searchLongGroup,
  searchBackfillGroup,
  generatedGroup,
  bundlesGroup,
  unitsGroup,
];

/**
 * Rounds each group runs when --reps / --warmup are not given: `npm run bench` is budgeted at 30 minutes
 * on a 2-core machine, so a group whose round takes seconds (a 10,000-flow apply, a batch of 128 texts
 * through the encoder) runs fewer rounds than one whose round takes a millisecond. Enough rounds for a
 * median and a 95% bootstrap interval of each ratio; the record keeps the rounds it ran.
 */
const ROUNDS: Record<string, { reps: number; warmup: number }> = {
  hostname: { reps: 200, warmup: 20 },
  'native-pinning': { reps: 40, warmup: 5 },
  'native-pagecache': { reps: 30, warmup: 3 },
  'storage-zstd': { reps: 30, warmup: 3 },
  'storage-vector-layout': { reps: 50, warmup: 5 },
  'cache-index': { reps: 60, warmup: 5 },
  defences: { reps: 200, warmup: 20 },
  audit: { reps: 200, warmup: 20 },
  lxc: { reps: 20, warmup: 3 },
  wireguard: { reps: 30, warmup: 3 },
  embed: { reps: 15, warmup: 2 },
  openflow: { reps: 15, warmup: 2 },
  'openflow-apply': { reps: 5, warmup: 1 },
  search: { reps: 50, warmup: 5 },
  'search-1m': { reps: 20, warmup: 2 },
  'search-backfill': { reps: 100, warmup: 10 },
  generated: { reps: 60, warmup: 5 },
  bundles: { reps: 60, warmup: 5 },
  units: { reps: 8, warmup: 1 },
};
const DEFAULT_ROUNDS = { reps: 200, warmup: 20 };

/** bench/results of the project (the nearest directory above with a package.json), whether this runs from bench/ or dist/bench/. */
function resultsDir(): string {
  for (let dir = import.meta.dirname; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'bench', 'results');
  }
  throw new Error(`no package.json above ${import.meta.dirname}: cannot tell where bench/results is`);
}

const USAGE = `usage: node dist/bench/run.js [group...] [--reps N] [--warmup N] [--seed N] [--resamples N] [--long] [--json] [--list]

Runs the named groups (all when none is named, the long ones only with --long), writes raw samples to bench/results/<group>.json
and prints a table per group (with --json: the summaries as one JSON array instead). --reps and --warmup
override every group's own rounds (ROUNDS in bench/run.ts).`;

/** The integer value of --name, or fallback when it is absent. */
function integerOption(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`--${name} must be an integer ≥ ${min}, got "${text}"`);
  }
  return value;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      reps: { type: 'string' },
      warmup: { type: 'string' },
      seed: { type: 'string' },
      resamples: { type: 'string' },
      json: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      long: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.list) {
    for (const g of GROUPS) console.log(`${g.name}\t${g.description}`);
    return 0;
  }
  const unknown = positionals.filter((name) => !GROUPS.some((g) => g.name === name));
  if (unknown.length > 0) {
    console.error(`unknown group(s): ${unknown.join(', ')}; known: ${GROUPS.map((g) => g.name).join(', ')}`);
    return 1;
  }
  const optionsFor = (group: BenchGroup): typeof options & { reps: number; warmup: number } => {
    const rounds = ROUNDS[group.name] ?? DEFAULT_ROUNDS;
    return {
      ...options,
      reps: integerOption('reps', values.reps, rounds.reps, 1),
      warmup: integerOption('warmup', values.warmup, rounds.warmup, 0),
    };
  };
  const options = {
    seed: integerOption('seed', values.seed, 20_240_601, 0),
    resamples: integerOption('resamples', values.resamples, 2_000, 100),
  };
  const results = resultsDir();
  // long groups (minutes each) run when named, or with --long; `npm run bench` stays within 30 minutes
  const selected =
    positionals.length === 0
      ? GROUPS.filter((g) => g.long === undefined || values.long)
      : GROUPS.filter((g) => positionals.includes(g.name));
  for (const g of GROUPS) {
    if (positionals.length === 0 && g.long !== undefined && !values.long) {
      console.error(`skipping ${g.name} (long: ${g.long}); run it with --long or by name`);
    }
  }

  // The first Ctrl-C stops between two operations so the group can tear its sandbox down; a second one kills.
  const interrupt = new AbortController();
  const onSignal = (): void => {
    console.error('\nstopping after the current operation (again to kill)…');
    interrupt.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const summaries: GroupResult[] = [];
  for (const group of selected) {
    const o = optionsFor(group);
    if (!values.json) {
      console.log(`\n## ${group.name}: ${o.warmup} warm-up + ${o.reps} measured rounds, interleaved\n`);
    }
    const record = await runGroup(group, { ...o, signal: interrupt.signal });
    const file = writeRecord(results, record);
    const summary = resultOf(record);
    summaries.push(summary);
    if (!values.json) console.log(`${formatTable(summary)}\n\nraw samples: ${file}`);
  }
  if (values.json) console.log(JSON.stringify(summaries, null, 2));
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof BenchInterrupted) {
      console.error('interrupted; nothing written for the unfinished group');
      process.exitCode = 130;
      return;
    }
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 1;
  },
);
