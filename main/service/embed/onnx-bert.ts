import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import type * as Ort from 'onnxruntime-node';
import type { Embedder, ModelInfo } from './embedder.js';
import { wordPieceFromTokenizerJson, wordPieceFromVocabTxt, type WordPieceTokenizer } from './wordpiece.js';

const require = createRequire(import.meta.url);

/** A model folder's bytes, read by the core and handed to the embedder process (which parses them). */
export interface OnnxBertBytes {
  name: string;
  id: string;
  model: Uint8Array;
  tokenizerFile: 'tokenizer.json' | 'vocab.txt';
  tokenizer: string;
}

/** A model folder that lacks what its runtime needs, naming the missing file. */
export class ModelFolderError extends Error {
  constructor(
    readonly dir: string,
    readonly missing: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads a BERT-class model folder: model.onnx and tokenizer.json (preferred) or vocab.txt. The id is
 * the SHA-256 of the model's bytes followed by the tokenizer's (the tokenizer changes the vectors).
 */
export function readOnnxBertFolder(dir: string): OnnxBertBytes {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory())
    throw new ModelFolderError(abs, abs, `${abs} is not a directory`);
  const modelPath = join(abs, 'model.onnx');
  if (!existsSync(modelPath))
    throw new ModelFolderError(
      abs,
      'model.onnx',
      `${abs} has no model.onnx (an ONNX model folder needs model.onnx and tokenizer.json or vocab.txt)`,
    );
  const tokenizerFile = existsSync(join(abs, 'tokenizer.json'))
    ? 'tokenizer.json'
    : existsSync(join(abs, 'vocab.txt'))
      ? 'vocab.txt'
      : undefined;
  if (tokenizerFile === undefined)
    throw new ModelFolderError(
      abs,
      'tokenizer.json',
      `${abs} has model.onnx but neither tokenizer.json nor vocab.txt (its WordPiece vocabulary)`,
    );
  const model = readFileSync(modelPath);
  const tokenizer = readFileSync(join(abs, tokenizerFile));
  const hash = createHash('sha256');
  hash.update(`model.onnx\0${model.length}\0`).update(model);
  hash.update(`${tokenizerFile}\0${tokenizer.length}\0`).update(tokenizer);
  return {
    name: basename(abs),
    id: hash.digest('hex'),
    model: new Uint8Array(model.buffer, model.byteOffset, model.byteLength),
    tokenizerFile,
    tokenizer: tokenizer.toString('utf8'),
  };
}

/** Texts per onnxruntime run: padding grows with the longest text of a batch. */
export const ONNX_BATCH = 32;

/**
 * An ONNX BERT-class sentence embedder: WordPiece ids, attention mask and token type ids (int64,
 * [batch, seq]), the graph's last hidden state mean-pooled over the unmasked tokens, L2-normalised.
 * Runs on one intra-op thread (faster than two on these 2-core machines, DESIGN.md section 6).
 */
export async function openOnnxBert(bytes: OnnxBertBytes): Promise<Embedder> {
  // Without it onnxruntime 1.30 writes a device id under ~/.cache/Microsoft, /tmp/.ses and
  // /tmp/mat-debug-<pid>.log (its telemetry); read when the library initialises.
  process.env['ORT_DISABLE_TELEMETRY'] ??= '1';
  const ort = require('onnxruntime-node') as typeof Ort;
  const tokenizer =
    bytes.tokenizerFile === 'tokenizer.json'
      ? wordPieceFromTokenizerJson(bytes.tokenizer, 'tokenizer.json')
      : wordPieceFromVocabTxt(bytes.tokenizer, 'vocab.txt');
  const session = await ort.InferenceSession.create(bytes.model, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  for (const input of ['input_ids', 'attention_mask'])
    if (!session.inputNames.includes(input))
      throw new Error(`model.onnx has no input "${input}" (it has ${session.inputNames.join(', ')})`);
  const output = session.outputNames.includes('last_hidden_state')
    ? 'last_hidden_state'
    : session.outputNames[0];
  if (output === undefined) throw new Error('model.onnx has no output');
  const run = (texts: readonly string[]) => runBatch(ort, session, tokenizer, output, texts);
  const probe = await run(['probe']);
  const dims = probe[0]?.length ?? 0;
  if (dims === 0) throw new Error('model.onnx gives an empty vector');
  const model: ModelInfo = {
    id: bytes.id,
    name: bytes.name,
    label: `ONNX BERT-class model "${bytes.name}" (onnxruntime-node CPU; WordPiece, masked mean pooling; ${dims}-d)`,
    runtime: 'onnx-bert',
    dims,
  };
  let closed = false;
  return {
    model,
    async embed(texts) {
      if (closed) throw new Error('the ONNX embedder is closed');
      const out: Float32Array[] = [];
      for (let i = 0; i < texts.length; i += ONNX_BATCH)
        out.push(...(await run(texts.slice(i, i + ONNX_BATCH))));
      return out;
    },
    async close() {
      closed = true;
      await session.release();
    },
  };
}

async function runBatch(
  ort: typeof Ort,
  session: Ort.InferenceSession,
  tokenizer: WordPieceTokenizer,
  output: string,
  texts: readonly string[],
): Promise<Float32Array[]> {
  if (texts.length === 0) return [];
  const encoded = texts.map((t) => tokenizer.encode(t).ids);
  const seq = Math.max(...encoded.map((ids) => ids.length));
  const batch = texts.length;
  const ids = new BigInt64Array(batch * seq).fill(BigInt(tokenizer.padId));
  const mask = new BigInt64Array(batch * seq);
  encoded.forEach((row, b) =>
    row.forEach((id, s) => {
      ids[b * seq + s] = BigInt(id);
      mask[b * seq + s] = 1n;
    }),
  );
  const feeds: Record<string, Ort.Tensor> = {
    input_ids: new ort.Tensor('int64', ids, [batch, seq]),
    attention_mask: new ort.Tensor('int64', mask, [batch, seq]),
  };
  if (session.inputNames.includes('token_type_ids'))
    feeds['token_type_ids'] = new ort.Tensor('int64', new BigInt64Array(batch * seq), [batch, seq]);
  const result = await session.run(feeds, [output]);
  const tensor = result[output];
  if (tensor === undefined || tensor.type !== 'float32')
    throw new Error(`model.onnx output ${output} is not float32`);
  const data = tensor.data as Float32Array;
  const dims = tensor.dims;
  const vectors: Float32Array[] = [];
  if (dims.length === 2) {
    // already pooled by the graph ([batch, hidden])
    const hidden = dims[1] ?? 0;
    for (let b = 0; b < batch; b++) vectors.push(unit(data.slice(b * hidden, (b + 1) * hidden)));
    return vectors;
  }
  if (dims.length !== 3 || dims[0] !== batch || dims[1] !== seq)
    throw new Error(`model.onnx output ${output} has shape [${dims.join(', ')}], not [batch, seq, hidden]`);
  const hidden = dims[2] ?? 0;
  for (let b = 0; b < batch; b++) {
    const v = new Float64Array(hidden);
    let count = 0;
    for (let s = 0; s < seq; s++) {
      if (mask[b * seq + s] === 0n) continue;
      count++;
      const base = (b * seq + s) * hidden;
      for (let h = 0; h < hidden; h++) v[h] = (v[h] ?? 0) + (data[base + h] ?? 0);
    }
    const pooled = new Float32Array(hidden);
    for (let h = 0; h < hidden; h++) pooled[h] = (v[h] ?? 0) / Math.max(count, 1);
    vectors.push(unit(pooled));
  }
  return vectors;
}

function unit(v: Float32Array): Float32Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.max(Math.sqrt(sum), 1e-12);
  for (let i = 0; i < v.length; i++) v[i] = (v[i] ?? 0) / norm;
  return v;
}
