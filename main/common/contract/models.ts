import { z } from 'zod';

/** A text embedding model as `op-dbus model list | info --json` print it. */
export const EmbeddingModel = z.object({
  /** SHA-256 hex of the model's bytes. */
  id: z.string().regex(/^[0-9a-f]{64}$/),
  name: z.string(),
  /** What it honestly is (pretrained sentence encoder, ONNX folder, …). */
  label: z.string(),
  runtime: z.enum(['tfjs-use-lite', 'onnx-bert']),
  dims: z.number().int().positive(),
});
export type EmbeddingModel = z.infer<typeof EmbeddingModel>;

/** The background re-embedding after a model change. */
export const ReembedProgress = z.object({
  model: z.string(),
  state: z.enum(['idle', 'running', 'done', 'failed']),
  done: z.number().int(),
  total: z.number().int(),
  message: z.string().optional(),
});
export type ReembedProgress = z.infer<typeof ReembedProgress>;

const LatencyHistogram = z.object({ buckets: z.array(z.number()), counts: z.array(z.number().int()) });
const CacheTier = z.object({
  hits: z.number().int(),
  misses: z.number().int(),
  evictions: z.number().int(),
  entries: z.number().int(),
  bytes: z.number(),
  latencyUs: LatencyHistogram,
});

/**
 * The audit search index under the model in use: every entry gets a vector of it (the backfill at start,
 * the re-embedding after `model use`), so `queued` falling to 0 is that work done.
 */
export const EmbeddingSearchProgress = z.object({
  /** The model the index searches (its id), null while it has none (lexical search only). */
  model: z.string().nullable(),
  /** Entries of the log the index has read. */
  entries: z.number().int(),
  /** Entries with a vector of that model. */
  vectors: z.number().int(),
  /** Entries waiting for one (embedded in the background, through the embedder process). */
  queued: z.number().int(),
});
export type EmbeddingSearchProgress = z.infer<typeof EmbeddingSearchProgress>;

/** The embedding cache and the embedder process, for the console's panel (a part of Stats). */
export const EmbeddingStats = z.object({
  model: EmbeddingModel,
  cache: z
    .object({ memory: CacheTier, persistent: CacheTier, lastRebuild: z.string().nullable() })
    .optional(),
  process: z
    .object({
      pid: z.number().int().optional(),
      uid: z.number().int().optional(),
      batches: z.number().int(),
      texts: z.number().int(),
      queuedTexts: z.number().int(),
      restarts: z.number().int(),
      retried: z.number().int(),
      failedBatches: z.number().int(),
    })
    .optional(),
  reembed: ReembedProgress,
  /** The audit search's side of the re-embedding (absent when the core has no search index). */
  search: EmbeddingSearchProgress.optional(),
});
export type EmbeddingStats = z.infer<typeof EmbeddingStats>;

export const ModelsRequest = z.object({}).strict();
export const ModelsResponse = z.object({
  models: z.array(EmbeddingModel),
  /** The name of the model in use. */
  current: z.string(),
});

export const ModelUseRequest = z
  .object({
    /** A model's name from `model list`, or an absolute path of a model folder. */
    model: z.string().min(1).max(4096),
  })
  .strict();
export const ModelUseResponse = z.object({ model: EmbeddingModel, reembed: ReembedProgress });

export const ModelInfoRequest = z.object({}).strict();
export const ModelInfoResponse = EmbeddingStats;
