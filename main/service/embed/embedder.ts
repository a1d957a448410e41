/**
 * The one interface every embedder implements (DESIGN.md section 6): texts in, unit-length
 * Float32Array vectors out, described by a ModelInfo whose id is the SHA-256 of the model's bytes.
 */

/** Which engine runs a model. */
export type EmbedRuntime = 'tfjs-use-lite' | 'onnx-bert';

/** What a model is, as `op-dbus model info --json` prints it. */
export interface ModelInfo {
  /** SHA-256 hex of the model's bytes (every file it loads, in a fixed order), never a name. */
  readonly id: string;
  /** Short name a user types to `op-dbus model use` (a directory's basename for folders). */
  readonly name: string;
  /** What it honestly is, e.g. "Universal Sentence Encoder lite (pretrained, 512-d)". */
  readonly label: string;
  readonly runtime: EmbedRuntime;
  readonly dims: number;
}

/** How a caller wants its texts embedded. */
export interface EmbedOptions {
  /**
   * Someone waits for these (a search query): they go ahead of queued background work (a backfill), so a
   * query never waits behind thousands of texts. Embedders without a queue ignore it.
   */
  urgent?: boolean;
}

/** Texts to vectors with one model. */
export interface Embedder {
  readonly model: ModelInfo;
  /** One vector per text, in order, each of length model.dims and L2-normalised. */
  embed(texts: readonly string[], options?: EmbedOptions): Promise<Float32Array[]>;
  /** Releases the model (and its process, for the out-of-process embedder). */
  close(): Promise<void>;
}

/** Cosine similarity of two vectors (their dot product when both are unit length). */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** Scales a vector to unit length in place (a zero vector stays zero). */
export function normalise(v: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += (v[i] ?? 0) * (v[i] ?? 0);
  const norm = Math.sqrt(sum);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] = (v[i] ?? 0) / norm;
  return v;
}
