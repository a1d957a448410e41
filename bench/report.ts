import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { CLAIMS } from './report/claims.js';
import { generateReport } from './report/generate.js';
import { gitStaleCheck, loadResults } from './report/results.js';

// `npm run bench:report`: bench/REPORT.md and bench/plots/*.svg from bench/results/*.json.

function projectRoot(): string {
  for (let dir = import.meta.dirname; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  throw new Error(`no package.json above ${import.meta.dirname}`);
}

const root = projectRoot();
const bench = join(root, 'bench');
const expected = [...new Set(CLAIMS.flatMap((c) => c.groups))];
const loaded = loadResults(join(bench, 'results'), expected, gitStaleCheck(root));
const groups = [...new Set([...loaded.records.keys(), ...expected])].sort();
const report = generateReport(loaded, { now: new Date(), groups });
const plotsDir = join(bench, 'plots');
mkdirSync(plotsDir, { recursive: true });
for (const old of readdirSync(plotsDir)) if (old.endsWith('.svg')) rmSync(join(plotsDir, old));
for (const [file, svg] of report.plots) writeFileSync(join(plotsDir, file), svg);
writeFileSync(join(bench, 'REPORT.md'), report.markdown);
console.log(
  `bench/REPORT.md: ${CLAIMS.length} claims, ${report.plots.size} plots, ${loaded.records.size} results files` +
    (loaded.problems.length > 0 ? `, ${loaded.problems.length} with problems (named in the report)` : ''),
);
