import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder } from './embedder.js';
import { ModelFolderError, openOnnxBert, readOnnxBertFolder } from './onnx-bert.js';
import { tinyBert, type TinyBert } from './tiny-bert.js';
import { wordPieceFromTokenizerJson } from './wordpiece.js';

let dir: string;
let model: TinyBert;
let embedder: Embedder;
const at = (a: ArrayLike<number>, i: number): number => a[i] ?? NaN;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'opdbus-embed-onnx-'));
  model = tinyBert();
  writeFileSync(join(dir, 'model.onnx'), model.onnx);
  writeFileSync(join(dir, 'tokenizer.json'), model.tokenizerJson);
  embedder = await openOnnxBert(readOnnxBertFolder(dir));
});

afterAll(async () => {
  await embedder.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Masked mean pooling and L2 norm of the float64 reference, for one text. */
function referenceVector(text: string): Float64Array {
  const ids = wordPieceFromTokenizerJson(model.tokenizerJson).encode(text).ids;
  const rows = model.reference(ids);
  const mean = new Float64Array(model.hidden);
  for (const row of rows)
    for (let h = 0; h < model.hidden; h++) mean[h] = at(mean, h) + at(row, h) / rows.length;
  const norm = Math.hypot(...mean);
  return mean.map((v) => v / norm);
}

describe('the ONNX BERT embedder on a tiny generated graph', () => {
  it('gives the reference computation within float tolerance, batched with padding', async () => {
    const texts = [
      'wireguard wg0: listen port changed',
      'a',
      'the bridge ovs0 was added to the host network with interface eth0 and address 10.0.0.1',
      'Café résumé naïve — 東京 大学!',
      'unknownword zzzqqq',
      '',
    ];
    const got = await embedder.embed(texts);
    expect(got).toHaveLength(texts.length);
    texts.forEach((text, i) => {
      const want = referenceVector(text);
      const v = got[i] ?? new Float32Array();
      expect(v.length).toBe(model.hidden);
      let maxDiff = 0;
      for (let h = 0; h < model.hidden; h++) maxDiff = Math.max(maxDiff, Math.abs(at(v, h) - at(want, h)));
      expect(maxDiff, text).toBeLessThan(1e-5);
    });
    // padding in a batch does not leak into a text's vector: alone it is the same
    const alone = await embedder.embed(['a']);
    for (let h = 0; h < model.hidden; h++) expect(at(alone[0] ?? [], h)).toBeCloseTo(at(got[1] ?? [], h), 6);
  });

  it('describes itself with the SHA-256 of its files and its dims', () => {
    expect(embedder.model.id).toMatch(/^[0-9a-f]{64}$/);
    expect(embedder.model.dims).toBe(model.hidden);
    expect(embedder.model.runtime).toBe('onnx-bert');
    expect(embedder.model.label).toMatch(/ONNX/);
  });

  it('embeds more texts than one onnxruntime batch', async () => {
    const texts = Array.from({ length: 70 }, (_, i) => `host ${i} changed state`);
    const got = await embedder.embed(texts);
    expect(got).toHaveLength(70);
    const want = referenceVector('host 69 changed state');
    for (let h = 0; h < model.hidden; h++) expect(at(got[69] ?? [], h)).toBeCloseTo(at(want, h), 5);
  });

  it('refuses a folder naming the file it lacks', () => {
    const empty = mkdtempSync(join(tmpdir(), 'opdbus-embed-onnx-empty-'));
    try {
      expect(() => readOnnxBertFolder(empty)).toThrow(/has no model\.onnx/);
      writeFileSync(join(empty, 'model.onnx'), model.onnx);
      let caught: unknown;
      try {
        readOnnxBertFolder(empty);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(ModelFolderError);
      expect((caught as ModelFolderError).missing).toBe('tokenizer.json');
      expect((caught as Error).message).toMatch(/neither tokenizer\.json nor vocab\.txt/);
      writeFileSync(join(empty, 'vocab.txt'), model.vocab.join('\n') + '\n');
      expect(readOnnxBertFolder(empty).tokenizerFile).toBe('vocab.txt');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
