import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { OpError } from '../../../common/contract/errors.js';
import type { Embedder } from '../../embed/embedder.js';
import { AuditLog } from '../log.js';
import { SEMANTIC_WEIGHT } from './fusion.js';
import { SearchIndex } from './search-index.js';

/** The labelled set's shape; other keys, at the top or in a query, are ignored. */
export const LabelledSet = z.object({
  entries: z.record(z.string(), z.string()),
  queries: z.array(
    z.object({
      q: z.string().min(1),
      kind: z.enum(['lexical', 'paraphrase']),
      want: z.array(z.string()).min(1),
    }),
  ),
});
export type LabelledSet = z.infer<typeof LabelledSet>;

/** Quality of one method on one group of queries. */
export interface Metrics {
  'recall@1': number;
  'recall@5': number;
  mrr: number;
}
export type MethodMetrics = Record<'lexical' | 'paraphrase' | 'all', Metrics>;
/** `{ methods: { bm25 | <embedder name> | hybrid: { lexical | paraphrase | all: Metrics } } }` */
export interface EvalReport {
  methods: Record<string, MethodMetrics>;
}
/** Each query's ranked entry ids per method (for the bench's own analysis). */
export type Rankings = Record<string, string[][]>;

/** Results ranked per query and method; MRR counts the first wanted entry within them. */
const RANKED = 100;

/** Checks a labelled set, naming the JSON pointer of the first problem. */
export function parseLabelledSet(value: unknown, file: string): LabelledSet {
  const r = LabelledSet.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const pointer = issue === undefined ? '' : `/${issue.path.map(String).join('/')}`;
    throw new OpError('InvalidArgument', `labelled set: ${issue?.message ?? 'invalid'}`, { file, pointer });
  }
  for (const [i, q] of r.data.queries.entries()) {
    for (const [j, id] of q.want.entries()) {
      if (!Object.hasOwn(r.data.entries, id)) {
        throw new OpError(
          'InvalidArgument',
          `labelled set: query ${i} wants entry ${JSON.stringify(id)}, which entries lacks`,
          {
            file,
            pointer: `/queries/${i}/want/${j}`,
          },
        );
      }
    }
  }
  return r.data;
}

/**
 * Indexes the set's entries in a scratch audit log (a temp dir, removed after) as plan entries, embeds them
 * with each embedder, and ranks every query by BM25 alone, each embedder alone, and the fusion (with the
 * first embedder, at `weight`). Queries are those of `only` when given (indexes into set.queries).
 */
export async function evaluate(
  set: LabelledSet,
  embedders: readonly Embedder[],
  opts: { weight?: number; only?: readonly number[]; weights?: readonly number[] } = {},
): Promise<{ report: EvalReport; rankings: Rankings }> {
  const dir = mkdtempSync(join(tmpdir(), 'opdbus-search-eval-'));
  try {
    const log = AuditLog.open(join(dir, 'audit.sqlite'), { synchronous: 'NORMAL', writerThread: false });
    const index = SearchIndex.open(join(dir, 'search.sqlite'));
    try {
      const ids = Object.keys(set.entries);
      const idOf = new Map<number, string>();
      const appended = log.appendMany(
        ids.map((id) => ({
          kind: 'plan' as const,
          actor: { uid: 0, subject: 'search-eval' },
          plugin: null,
          summary: set.entries[id] as string,
        })),
      );
      appended.forEach((e, i) => idOf.set(e.seq, ids[i] as string));
      index.catchUp(log);
      const queries = (opts.only ?? set.queries.map((_, i) => i))
        .map((i) => set.queries[i])
        .filter((q) => q !== undefined);
      const rankings: Rankings = {};
      const rank = (name: string, run: (q: string) => number[]): void => {
        rankings[name] = queries.map((q) => run(q.q).map((seq) => idOf.get(seq) ?? ''));
      };
      rank('bm25', (q) => index.search(q, undefined, {}, RANKED, 'lexical').results.map((r) => r.seq));
      // the fusion uses the first embedder; each embedder alone is measured too
      const queryVectors = new Map<string, Float32Array[]>();
      for (const e of embedders) {
        index.useModel(e.model);
        const texts = ids.map((id) => set.entries[id] as string);
        const vectors: Float32Array[] = [];
        for (let i = 0; i < texts.length; i += 64) vectors.push(...(await e.embed(texts.slice(i, i + 64))));
        index.putVectors(
          e.model.id,
          appended.map((a, i) => ({ seq: a.seq, vec: vectors[i] as Float32Array })),
        );
        const qv = await e.embed(queries.map((q) => q.q));
        queryVectors.set(e.model.id, qv);
        rank(e.model.name, (q) => {
          const i = queries.findIndex((x) => x.q === q);
          return index.search(q, qv[i], {}, RANKED, 'semantic').results.map((r) => r.seq);
        });
      }
      const first = embedders[0];
      if (first !== undefined) {
        index.useModel(first.model);
        const qv = queryVectors.get(first.model.id) ?? [];
        rank('hybrid', (q) => {
          const i = queries.findIndex((x) => x.q === q);
          return index
            .search(q, qv[i], {}, RANKED, 'hybrid', opts.weight ?? SEMANTIC_WEIGHT)
            .results.map((r) => r.seq);
        });
        // the bench's weight search: the fusion at each weight, from the same vectors
        for (const w of opts.weights ?? []) {
          rank(`hybrid@${w}`, (q) => {
            const i = queries.findIndex((x) => x.q === q);
            return index.search(q, qv[i], {}, RANKED, 'hybrid', w).results.map((r) => r.seq);
          });
        }
      }
      const methods: Record<string, MethodMetrics> = {};
      for (const [name, ranked] of Object.entries(rankings)) {
        const group = (kind?: 'lexical' | 'paraphrase'): Metrics =>
          metrics(
            queries.flatMap((q, i) =>
              kind === undefined || q.kind === kind ? [{ want: q.want, got: ranked[i] ?? [] }] : [],
            ),
          );
        methods[name] = { lexical: group('lexical'), paraphrase: group('paraphrase'), all: group() };
      }
      return { report: { methods }, rankings };
    } finally {
      index.close();
      log.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** recall@k: the share of a query's wanted entries in its top k, averaged; MRR: 1 / rank of the first wanted. */
export function metrics(rows: readonly { want: readonly string[]; got: readonly string[] }[]): Metrics {
  if (rows.length === 0) return { 'recall@1': 0, 'recall@5': 0, mrr: 0 };
  const recall = (k: number): number =>
    rows.reduce(
      (sum, r) => sum + r.want.filter((w) => r.got.slice(0, k).includes(w)).length / r.want.length,
      0,
    ) / rows.length;
  const mrr =
    rows.reduce((sum, r) => {
      const at = r.got.findIndex((g) => r.want.includes(g));
      return sum + (at < 0 ? 0 : 1 / (at + 1));
    }, 0) / rows.length;
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return { 'recall@1': round(recall(1)), 'recall@5': round(recall(5)), mrr: round(mrr) };
}
