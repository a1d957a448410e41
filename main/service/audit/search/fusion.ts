/**
 * How BM25 and embedding similarity are fused: score = (1 - w) · lexical + w · semantic, both on 0..1 within
 * one answer: lexical is BM25 over the best BM25 of the answer times the share of the query's content words
 * the entry holds; semantic is the cosine similarity spread between the lowest and highest of the semantic
 * candidates (the parts a result reports are the lexical value and the raw cosine).
 *
 * w = 0.4 was chosen on the tuning half of bench/search/labelled.json (`node dist/bench/search/quality.js`
 * searches w in steps of 0.05 by MRR over that half's queries; 0.40-0.70 tie at the best, the smallest is
 * kept) and is reported on the other half only (bench/search/quality.json).
 */
export const SEMANTIC_WEIGHT = 0.4;

/** The fused score of one candidate; a missing part counts 0. */
export function fuse(lexical: number | null, semantic: number | null, w = SEMANTIC_WEIGHT): number {
  return (1 - w) * (lexical ?? 0) + w * Math.max(0, semantic ?? 0);
}
