import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';

// The report reads only what `npm run bench` wrote: bench/results/<group>.json. Each file is checked
// (shape, machine facts, commit) before a number of it reaches the report; a file that is missing,
// malformed or stale becomes one clear line in the report instead of a crash or a silent gap.

const Summary = z.object({
  n: z.number().int().nonnegative(),
  median: z.number(),
  p25: z.number(),
  p75: z.number(),
  p10: z.number(),
  p90: z.number(),
  min: z.number(),
  max: z.number(),
  relativeSpread: z.number(),
});

const Ratio = z.object({ ratio: z.number(), low: z.number(), high: z.number(), level: z.number() });

const Machine = z.object({
  date: z.string().datetime(),
  node: z.string(),
  cpuModel: z.string(),
  cores: z.number().int().positive(),
  memoryBytes: z.number().positive(),
  kernel: z.string(),
  loadAverage: z.object({ before: z.array(z.number()), after: z.array(z.number()) }),
  gitCommit: z.string().nullable(),
  gitDirty: z.boolean().nullable(),
  numaNodes: z.number().int().positive().nullable().optional(),
  filesystem: z.string().optional(),
  command: z.string().optional(),
  elapsedSeconds: z.number().nonnegative().optional(),
});

export const GroupRecordFile = z.object({
  group: z.string().regex(/^[a-z0-9-]+$/),
  description: z.string(),
  baseline: z.string(),
  unit: z.literal('ns'),
  options: z.object({ reps: z.number(), warmup: z.number(), seed: z.number(), resamples: z.number() }),
  machine: Machine,
  notes: z.array(z.string()),
  facts: z.record(z.string(), z.number()).optional(),
  cases: z.array(
    z.object({ name: z.string(), summary: Summary, firstRunNs: z.number(), ratio: Ratio.optional() }),
  ),
  samples: z.record(z.string(), z.object({ warmupNs: z.array(z.number()), measuredNs: z.array(z.number()) })),
});
export type GroupRecordFile = z.infer<typeof GroupRecordFile>;

/** Why a group's numbers are not used (or used with a warning). */
export interface ResultProblem {
  group: string;
  kind: 'missing' | 'malformed' | 'stale';
  message: string;
}

export interface LoadedResults {
  records: Map<string, GroupRecordFile>;
  problems: ResultProblem[];
}

/** Whether the group's own code changed after the commit its record was measured at (git decides). */
export type StaleCheck = (record: GroupRecordFile) => string | undefined;

/**
 * Reads every results file in dir; expected names the groups the report needs, so one that is
 * absent is named too. A stale record is still used, with its problem shown beside its numbers.
 */
export function loadResults(dir: string, expected: readonly string[], stale: StaleCheck): LoadedResults {
  const records = new Map<string, GroupRecordFile>();
  const problems: ResultProblem[] = [];
  const files = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .sort()
    : [];
  for (const file of files) {
    const group = basename(file, '.json');
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    } catch (e) {
      problems.push({
        group,
        kind: 'malformed',
        message: `bench/results/${file} is not JSON (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); run \`node dist/bench/run.js ${group}\` again`,
      });
      continue;
    }
    const parsed = GroupRecordFile.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue === undefined ? '' : `/${issue.path.map(String).join('/')}`;
      problems.push({
        group,
        kind: 'malformed',
        message: `bench/results/${file} at ${where || '/'}: ${issue?.message ?? 'invalid'}; run \`node dist/bench/run.js ${group}\` again`,
      });
      continue;
    }
    if (parsed.data.group !== group) {
      problems.push({
        group,
        kind: 'malformed',
        message: `bench/results/${file} holds group "${parsed.data.group}", not "${group}"`,
      });
      continue;
    }
    records.set(group, parsed.data);
    const why = stale(parsed.data);
    if (why !== undefined) problems.push({ group, kind: 'stale', message: why });
  }
  for (const group of expected) {
    if (!records.has(group) && !problems.some((p) => p.group === group)) {
      problems.push({
        group,
        kind: 'missing',
        message: `no bench/results/${group}.json: run \`npm run bench\` (or \`node dist/bench/run.js ${group}\`)`,
      });
    }
  }
  return { records, problems };
}

/**
 * Staleness by git: a record is stale when its group's source (bench/groups/<group>.ts) changed in a
 * commit the record's commit does not contain, or when its commit is unknown to this repository.
 */
export function gitStaleCheck(root: string): StaleCheck {
  const git = (args: string[]): string | null => {
    try {
      return execFileSync('git', args, {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        env: { ...process.env, GIT_OPTIONAL_LOCKS: '0' },
      }).trim();
    } catch {
      return null;
    }
  };
  return (record) => {
    const commit = record.machine.gitCommit;
    if (commit === null) return `measured outside a git work tree: its code cannot be told`;
    if (git(['cat-file', '-e', `${commit}^{commit}`]) === null) {
      return `measured at commit ${commit.slice(0, 12)}, which this repository does not have`;
    }
    const source = `bench/groups/${record.group}.ts`;
    const last = git(['log', '-1', '--format=%H', '--', source]);
    if (last === null || last === '') return undefined;
    if (git(['merge-base', '--is-ancestor', last, commit]) === null) {
      return `measured at ${commit.slice(0, 12)} (${record.machine.date.slice(0, 10)}); ${source} changed since, in ${last.slice(0, 12)}: run it again`;
    }
    return undefined;
  };
}
