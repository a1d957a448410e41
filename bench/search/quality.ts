import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openUseLite } from '../../main/service/embed/use-lite.js';
import { evaluate, parseLabelledSet } from '../../main/service/audit/search/search-eval.js';
import { SEMANTIC_WEIGHT } from '../../main/service/audit/search/fusion.js';
import { reportText } from '../../main/service/audit/search/search-eval-command.js';

// The fusion weight, chosen on one half of the labelled set and reported on the other:
//   node dist/bench/search/quality.js
// The tuning half is every other query of each kind (the first, third, ...), the reporting half the
// rest. The weight maximising
// MRR over all queries of the tuning half is printed; SEMANTIC_WEIGHT in fusion.ts is set to it by hand.
const ROOT = join(import.meta.dirname, '../../..');
const file = join(ROOT, 'bench/search/labelled.json');
const set = parseLabelledSet(JSON.parse(readFileSync(file, 'utf8')), file);
const weights = Array.from({ length: 21 }, (_, i) => i / 20);
// within each kind, every other query: both halves hold lexical and paraphrase queries alike
const rankInKind = new Map<string, number>();
const half = set.queries.map((q) => {
  const n = rankInKind.get(q.kind) ?? 0;
  rankInKind.set(q.kind, n + 1);
  return n % 2;
});
const tune = half.flatMap((h, i) => (h === 0 ? [i] : []));
const report = half.flatMap((h, i) => (h === 1 ? [i] : []));
const embedder = await openUseLite();
try {
  const tuned = await evaluate(set, [embedder], { only: tune, weights });
  const mrrAt = weights.map((w) => ({ w, mrr: tuned.report.methods[`hybrid@${w}`]?.all.mrr ?? 0 }));
  // ties go to the smaller weight (the lexical side is the cheaper and the more explainable one)
  const best = mrrAt.reduce((a, b) => (b.mrr > a.mrr ? b : a));
  const reported = await evaluate(set, [embedder], { only: report, weight: best.w });
  const methods = Object.fromEntries(
    Object.entries(reported.report.methods).filter(([name]) => !name.startsWith('hybrid@')),
  );
  const out = {
    file: 'bench/search/labelled.json',
    entries: Object.keys(set.entries).length,
    queries: { all: set.queries.length, tuning: tune.length, reporting: report.length },
    paraphrases: set.queries.filter((q) => q.kind === 'paraphrase').length,
    tuning: { grid: mrrAt, chosen: best.w, committed: SEMANTIC_WEIGHT },
    reporting: { weight: best.w, methods },
  };
  // beside the labelled set, not in bench/results: quality figures, not a timed group the report reads
  writeFileSync(join(ROOT, 'bench/search/quality.json'), JSON.stringify(out, null, 2) + '\n');
  console.log(`tuning half (${tune.length} queries): MRR by semantic weight`);
  console.log(mrrAt.map((x) => `  w=${x.w.toFixed(2)}  MRR ${x.mrr.toFixed(3)}`).join('\n'));
  console.log(`chosen w = ${best.w} (fusion.ts has ${SEMANTIC_WEIGHT})\n`);
  console.log(`reporting half (${report.length} queries), hybrid at w = ${best.w}:`);
  console.log(reportText({ methods }));
} finally {
  await embedder.close();
}
