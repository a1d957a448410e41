import { encodeOnnxModel, FLOAT, INT64, type OnnxGraph } from './onnx-proto.js';

/**
 * A tiny BERT-shaped model written from code, for the tests and the bench: word + position + token
 * type embeddings, one masked self-attention, a dense layer with a residual and tanh, output
 * `last_hidden_state` [batch, seq, hidden]. With it goes the same computation in float64 (the
 * reference the ONNX path is checked against) and a WordPiece tokenizer.json for its vocabulary.
 */
export interface TinyBert {
  onnx: Uint8Array;
  tokenizerJson: string;
  vocab: string[];
  hidden: number;
  /** last_hidden_state for one sequence of ids, computed here in float64. */
  reference(ids: readonly number[]): Float64Array[];
}

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
}

const WORDS =
  'the a an of to in and is was for on with as by at from it be this that are or not set port peer host bridge interface address network link route container service unit package state plan apply change changed added removed listen key wireguard hostname ovs lxc dbus core audit log model vector search cafe resume naive garcon uber zurich munchen'.split(
    ' ',
  );
const PIECES = 'ing ed er s es ly tion ment able al ic ous ness less ful un re pre dis over sub inter'.split(
  ' ',
);
const CJK = '中文字日本語東京北京大学生活人工智能'.split('');

/** The vocabulary: specials, ASCII characters and their ## forms, words, pieces, some CJK. */
export function tinyBertVocab(): string[] {
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const ascii: string[] = [];
  for (let c = 33; c < 127; c++) {
    const ch = String.fromCharCode(c);
    if (ch >= 'A' && ch <= 'Z') continue;
    ascii.push(ch);
  }
  vocab.push(...ascii, ...ascii.filter((c) => /[a-z0-9]/.test(c)).map((c) => `##${c}`));
  vocab.push(...WORDS, ...PIECES.map((p) => `##${p}`), ...PIECES, ...CJK);
  return [...new Set(vocab)];
}

/** Builds the model with weights from a fixed seed. */
export function tinyBert(hidden = 16, maxPositions = 512, seed = 19): TinyBert {
  const vocab = tinyBertVocab();
  const rand = prng(seed);
  const matrix = (rows: number, cols: number, scale: number) =>
    Float32Array.from({ length: rows * cols }, () => rand() * scale);
  const word = matrix(vocab.length, hidden, 1);
  const position = matrix(maxPositions, hidden, 0.2);
  const type = matrix(2, hidden, 0.2);
  const dense = matrix(hidden, hidden, 0.5);
  const bias = matrix(1, hidden, 0.1);
  const scale = 1 / Math.sqrt(hidden);
  const i64 = (...v: number[]) => BigInt64Array.from(v.map(BigInt));
  const scalarF = (v: number) => Float32Array.of(v);
  const graph: OnnxGraph = {
    name: 'tiny-bert',
    opset: 13,
    inputs: ['input_ids', 'attention_mask', 'token_type_ids'].map((name) => ({
      name,
      elemType: INT64,
      shape: ['batch', 'sequence'],
    })),
    outputs: [{ name: 'last_hidden_state', elemType: FLOAT, shape: ['batch', 'sequence', hidden] }],
    initializers: [
      { name: 'word_embeddings', dims: [vocab.length, hidden], data: word },
      { name: 'position_embeddings', dims: [maxPositions, hidden], data: position },
      { name: 'token_type_embeddings', dims: [2, hidden], data: type },
      { name: 'dense_weight', dims: [hidden, hidden], data: dense },
      { name: 'dense_bias', dims: [hidden], data: bias },
      { name: 'one_index', dims: [], data: i64(1) },
      { name: 'zero_i', dims: [], data: i64(0) },
      { name: 'one_i', dims: [], data: i64(1) },
      { name: 'axes_1', dims: [1], data: i64(1) },
      { name: 'scale', dims: [], data: scalarF(scale) },
      { name: 'one_f', dims: [], data: scalarF(1) },
      { name: 'masked', dims: [], data: scalarF(-10000) },
    ],
    nodes: [
      { op: 'Gather', inputs: ['word_embeddings', 'input_ids'], outputs: ['we'] },
      { op: 'Gather', inputs: ['token_type_embeddings', 'token_type_ids'], outputs: ['te'] },
      { op: 'Shape', inputs: ['input_ids'], outputs: ['shape'] },
      {
        op: 'Gather',
        inputs: ['shape', 'one_index'],
        outputs: ['seq_len'],
        attributes: [{ name: 'axis', int: 0 }],
      },
      { op: 'Range', inputs: ['zero_i', 'seq_len', 'one_i'], outputs: ['positions'] },
      { op: 'Gather', inputs: ['position_embeddings', 'positions'], outputs: ['pe'] },
      { op: 'Add', inputs: ['we', 'te'], outputs: ['wt'] },
      { op: 'Add', inputs: ['wt', 'pe'], outputs: ['x'] },
      { op: 'Transpose', inputs: ['x'], outputs: ['xt'], attributes: [{ name: 'perm', ints: [0, 2, 1] }] },
      { op: 'MatMul', inputs: ['x', 'xt'], outputs: ['scores'] },
      { op: 'Mul', inputs: ['scores', 'scale'], outputs: ['scaled'] },
      {
        op: 'Cast',
        inputs: ['attention_mask'],
        outputs: ['mask_f'],
        attributes: [{ name: 'to', int: FLOAT }],
      },
      { op: 'Sub', inputs: ['one_f', 'mask_f'], outputs: ['inverse'] },
      { op: 'Mul', inputs: ['inverse', 'masked'], outputs: ['mask_bias'] },
      { op: 'Unsqueeze', inputs: ['mask_bias', 'axes_1'], outputs: ['mask_bias3'] },
      { op: 'Add', inputs: ['scaled', 'mask_bias3'], outputs: ['biased'] },
      { op: 'Softmax', inputs: ['biased'], outputs: ['attention'], attributes: [{ name: 'axis', int: -1 }] },
      { op: 'MatMul', inputs: ['attention', 'x'], outputs: ['context'] },
      { op: 'MatMul', inputs: ['context', 'dense_weight'], outputs: ['projected'] },
      { op: 'Add', inputs: ['projected', 'dense_bias'], outputs: ['biased_projection'] },
      { op: 'Add', inputs: ['biased_projection', 'x'], outputs: ['residual'] },
      { op: 'Tanh', inputs: ['residual'], outputs: ['last_hidden_state'] },
    ],
  };
  const tokenizerJson = JSON.stringify({
    version: '1.0',
    truncation: { direction: 'Right', max_length: 128, strategy: 'LongestFirst', stride: 0 },
    padding: null,
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
      ],
      pair: [],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab.map((t, i) => [t, i])),
    },
  });
  // typed arrays of known length: an index past the end is a bug here, so it reads as NaN
  const at = (a: ArrayLike<number>, i: number): number => a[i] ?? NaN;
  const reference = (ids: readonly number[]): Float64Array[] => {
    const x = ids.map((id, p) =>
      Float64Array.from(
        { length: hidden },
        (_, h) => at(word, id * hidden + h) + at(type, h) + at(position, p * hidden + h),
      ),
    );
    return x.map((xi) => {
      const scores = x.map((xj) => xi.reduce((sum, v, h) => sum + v * at(xj, h), 0) * scale);
      const max = Math.max(...scores);
      const exp = scores.map((v) => Math.exp(v - max));
      const total = exp.reduce((a, b) => a + b, 0);
      const context = new Float64Array(hidden);
      x.forEach((xj, j) => {
        for (let h = 0; h < hidden; h++) context[h] = at(context, h) + (at(exp, j) / total) * at(xj, h);
      });
      return Float64Array.from({ length: hidden }, (_, o) => {
        let y = at(bias, o) + at(xi, o);
        for (let h = 0; h < hidden; h++) y += at(context, h) * at(dense, h * hidden + o);
        return Math.tanh(y);
      });
    });
  };
  return { onnx: encodeOnnxModel(graph), tokenizerJson, vocab, hidden, reference };
}
