import type { ModelInfo } from './embedder.js';
import type { OnnxBertBytes } from './onnx-bert.js';

/** What the embedder process loads: the bundled USE-lite, or a model folder's bytes read by the core. */
export type ModelSpec = { kind: 'use-lite' } | { kind: 'onnx-bert'; bytes: OnnxBertBytes };

/** Core → embedder process (structured clone over the IPC channel). */
export type ChildRequest =
  { type: 'load'; spec: ModelSpec } | { type: 'embed'; id: number; texts: string[] } | { type: 'close' };

/** Embedder process → core. */
export type ChildReply =
  | { type: 'ready'; model: ModelInfo; uid: number }
  | { type: 'load-failed'; message: string }
  | { type: 'vectors'; id: number; vectors: Float32Array[] }
  | { type: 'embed-failed'; id: number; message: string };
