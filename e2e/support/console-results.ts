import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordOfSamples, writeRecord } from '../../bench/harness.js';
import { ROOT } from '../../test/support/sandbox.js';

const DESCRIPTION =
  "The console in Chromium (web mode, through op-dbus serve) timed with the browser's own clock: first contentful paint, the editor's processing of one key in a 1 MB document (keydown to the editor's input handled), and a plan of 1,000 containers shown after the core's answer (the relay reply's arrival in the page to the plan's rows painted).";

/**
 * Writes an e2e file's browser timings into bench/results/console.json, which several e2e files share:
 * the cases, notes and facts another file wrote are kept, this file's replace their earlier run.
 * `ours` tells this file's notes from the others' (its earlier notes are dropped).
 */
export function writeConsoleTimings(o: {
  timings: Record<string, number[]>;
  notes: string[];
  facts?: Record<string, number>;
  ours: (note: string) => boolean;
}): void {
  if (Object.keys(o.timings).length === 0) return;
  const dir = join(ROOT, 'bench', 'results');
  const file = join(dir, 'console.json');
  const cases: Record<string, number[]> = {};
  let kept: string[] = [];
  let facts: Record<string, number> = {};
  if (existsSync(file)) {
    const old = JSON.parse(readFileSync(file, 'utf8')) as {
      samples?: Record<string, { measuredNs: number[] }>;
      notes?: string[];
      facts?: Record<string, number>;
    };
    for (const [name, s] of Object.entries(old.samples ?? {})) {
      if (!(name in o.timings)) cases[name] = s.measuredNs;
    }
    kept = (old.notes ?? []).filter((n) => !o.ours(n));
    facts = old.facts ?? {};
  }
  writeRecord(
    dir,
    recordOfSamples({
      group: 'console',
      description: DESCRIPTION,
      cases: { ...cases, ...o.timings },
      notes: [...new Set([...kept, ...o.notes])],
      facts: { ...facts, ...o.facts },
    }),
  );
}
