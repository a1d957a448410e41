/**
 * How BM25 and embedding similarity are fused: score = (1 - w) · lexical + w · semantic, where lexical is
 * BM25 scaled to 0..1 by the best BM25 of the answer and semantic the cosine similarity (floored at 0).
 *
 * w was chosen on the tuning half of bench/search/labelled.json (`npm run bench -- search-quality`
 * searches w over a grid on that half, by MRR over all queries) and is reported on the other half only.
 */
export const SEMANTIC_WEIGHT = 0.5;

/** The fused score of one candidate; a missing part counts 0. */
export function fuse(lexical: number | null, semantic: number | null, w = SEMANTIC_WEIGHT): number {
  return (1 - w) * (lexical ?? 0) + w * Math.max(0, semantic ?? 0);
}
