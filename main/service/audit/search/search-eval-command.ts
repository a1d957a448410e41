import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { OpError } from '../../../common/contract/errors.js';
import { printable, printableJson } from '../../../common/text/printable.js';
import type { Embedder } from '../../embed/embedder.js';
import { openSearchEmbedder } from './search-embedder.js';
import { evaluate, parseLabelledSet, type EvalReport } from './search-eval.js';

/**
 * `op-dbus audit search-eval FILE`: the search's quality on a labelled set, measured locally on a scratch
 * log (no core involved): recall@1, recall@5 and MRR per query kind for BM25, each embedder and the fusion.
 */
export function searchEvalCommand(): Command {
  return new Command('search-eval')
    .description(
      'measure search quality on a labelled set (local, on a scratch log): recall@1, recall@5, MRR',
    )
    .argument('<file>', 'JSON: {"entries": {"<id>": "<summary>"}, "queries": [{"q", "kind", "want"}]}')
    .option('--json', 'machine-readable output')
    .action(async (file: string, o: { json?: boolean }) => {
      let value: unknown;
      try {
        value = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8'));
      } catch (e) {
        throw new OpError(
          'InvalidArgument',
          `cannot read the labelled set: ${e instanceof Error ? e.message : String(e)}`,
          {
            file,
          },
        );
      }
      const set = parseLabelledSet(value, file);
      const embedders: Embedder[] = [];
      const first = await openSearchEmbedder(process.env);
      if (first !== undefined) embedders.push(first);
      try {
        const { report } = await evaluate(set, embedders);
        process.stdout.write(
          o.json === true
            ? printableJson(JSON.stringify(report, null, 2)) + '\n'
            : printable(reportText(report), 'lines') + '\n',
        );
      } finally {
        for (const e of embedders) await e.close();
      }
    });
}

/** The report as a table: one row per method and query kind. */
export function reportText(r: EvalReport): string {
  const rows = [['method', 'queries', 'recall@1', 'recall@5', 'MRR']];
  for (const [name, m] of Object.entries(r.methods)) {
    for (const kind of ['lexical', 'paraphrase', 'all'] as const) {
      const x = m[kind];
      rows.push([name, kind, x['recall@1'].toFixed(3), x['recall@5'].toFixed(3), x.mrr.toFixed(3)]);
    }
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
