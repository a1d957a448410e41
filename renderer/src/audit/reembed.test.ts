import { describe, expect, it } from 'vitest';
import { embedderLine, reembedState } from './reembed.js';

const id = 'a'.repeat(64);
const nameOf = (m: string): string => (m === id ? 'tiny-a' : m.slice(0, 12));

describe('embedderLine', () => {
  it('names the model, says what it is and how it runs', () => {
    expect(
      embedderLine({
        id,
        name: 'use-lite',
        label: 'Universal Sentence Encoder lite (pretrained)',
        runtime: 'tfjs-use-lite',
        dims: 512,
      }),
    ).toBe('use-lite: Universal Sentence Encoder lite (pretrained) (TensorFlow.js, 512 dimensions)');
    expect(embedderLine({ id, name: 'tiny', label: 'ONNX folder', runtime: 'onnx-bert', dims: 16 })).toBe(
      'tiny: ONNX folder (onnxruntime-node, 16 dimensions)',
    );
  });
});

describe('reembedState', () => {
  it('says nothing when no model change happened', () => {
    expect(reembedState({ model: '', state: 'idle', done: 0, total: 0 }, nameOf)).toBeUndefined();
  });
  it('counts a running re-embed and explains what it means for a search', () => {
    const s = reembedState({ model: id, state: 'running', done: 1250, total: 5000 }, nameOf);
    expect(s?.tone).toBe('running');
    expect(s?.fraction).toBe(0.25);
    expect(s?.text).toBe(
      'Re-embedding the audit log with tiny-a: 1,250 of 5,000 entries (25 %). Until it ends, entries not yet embedded match by words only.',
    );
  });
  it('reports the end, an empty log, and a failure with its reason', () => {
    expect(reembedState({ model: id, state: 'done', done: 7, total: 7 }, nameOf)?.text).toBe(
      'Re-embedded with tiny-a: 7 of 7 entries.',
    );
    expect(reembedState({ model: id, state: 'done', done: 0, total: 0 }, nameOf)?.fraction).toBe(1);
    const f = reembedState(
      { model: 'b'.repeat(64), state: 'failed', done: 3, total: 9, message: 'the embedder crashed twice' },
      nameOf,
    );
    expect(f?.tone).toBe('failed');
    expect(f?.text).toBe(
      'Re-embedding with bbbbbbbbbbbb failed after 3 of 9 entries: the embedder crashed twice.',
    );
  });
});
