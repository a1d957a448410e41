/**
 * BERT's tokenizer, written here so that a model folder's tokenizer.json or vocab.txt is parsed by
 * our own bounded code: clean text, spaces around CJK ideographs, lowercase and strip accents
 * (uncased models), split on whitespace and punctuation, then greedy longest-match WordPiece with
 * the "##" continuation prefix; [CLS] … [SEP] around it, truncated to the model's length.
 */

export interface WordPieceConfig {
  vocab: Map<string, number>;
  lowercase: boolean;
  /** undefined: follow lowercase (BERT's rule). */
  stripAccents: boolean | undefined;
  handleChineseChars: boolean;
  cleanText: boolean;
  unkToken: string;
  clsToken: string;
  sepToken: string;
  padToken: string;
  continuingPrefix: string;
  maxInputCharsPerWord: number;
  /** Tokens per sequence, [CLS] and [SEP] included. */
  maxLength: number;
}

/** A tokenizer file that cannot be used, with what is wrong in words. */
export class TokenizerFileError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}

export interface Encoded {
  ids: number[];
  tokens: string[];
}

const PUNCTUATION = /^[\p{P}\u0021-\u002F\u003A-\u0040\u005B-\u0060\u007B-\u007E]$/u;
const WHITESPACE = /^\s$/u;
const CONTROL = /^[\p{Cc}\p{Cf}\p{Co}\p{Cs}]$/u;
const COMBINING_MARK = /\p{Mn}/gu;

function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

export class WordPieceTokenizer {
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  readonly unkId: number;

  constructor(
    readonly config: WordPieceConfig,
    file = 'tokenizer',
  ) {
    const need = (token: string): number => {
      const id = config.vocab.get(token);
      if (id === undefined)
        throw new TokenizerFileError(file, `the vocabulary lacks the special token ${token}`);
      return id;
    };
    this.clsId = need(config.clsToken);
    this.sepId = need(config.sepToken);
    this.unkId = need(config.unkToken);
    this.padId = need(config.padToken);
    if (!Number.isInteger(config.maxLength) || config.maxLength < 2)
      throw new TokenizerFileError(file, `max length ${config.maxLength} leaves no room for [CLS] and [SEP]`);
  }

  /** The text after BERT's normaliser (what the pre-tokenizer then splits). */
  normalise(text: string): string {
    const c = this.config;
    let out = '';
    for (const ch of text) {
      const cp = ch.codePointAt(0) ?? 0;
      if (c.cleanText) {
        if (cp === 0 || cp === 0xfffd) continue;
        if (ch !== '\t' && ch !== '\n' && ch !== '\r' && CONTROL.test(ch)) continue;
        if (WHITESPACE.test(ch)) {
          out += ' ';
          continue;
        }
      }
      out += c.handleChineseChars && isChineseChar(cp) ? ` ${ch} ` : ch;
    }
    if (c.lowercase) out = out.toLowerCase();
    if (c.stripAccents ?? c.lowercase) out = out.normalize('NFD').replace(COMBINING_MARK, '');
    return out;
  }

  /** Words and punctuation marks of a normalised text. */
  preTokenise(text: string): string[] {
    const words: string[] = [];
    let word = '';
    for (const ch of text) {
      if (WHITESPACE.test(ch)) {
        if (word !== '') words.push(word);
        word = '';
      } else if (PUNCTUATION.test(ch)) {
        if (word !== '') words.push(word);
        words.push(ch);
        word = '';
      } else {
        word += ch;
      }
    }
    if (word !== '') words.push(word);
    return words;
  }

  /** WordPiece pieces of one word (the unknown token when it cannot be spelled from the vocabulary). */
  wordPieces(word: string, into: string[]): void {
    const c = this.config;
    const chars = [...word];
    if (chars.length > c.maxInputCharsPerWord) {
      into.push(c.unkToken);
      return;
    }
    const pieces: string[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found: string | undefined;
      while (start < end) {
        const sub = (start > 0 ? c.continuingPrefix : '') + chars.slice(start, end).join('');
        if (c.vocab.has(sub)) {
          found = sub;
          break;
        }
        end--;
      }
      if (found === undefined) {
        into.push(c.unkToken);
        return;
      }
      pieces.push(found);
      start = end;
    }
    into.push(...pieces);
  }

  /** Tokens of a text without special tokens or truncation. */
  tokenise(text: string): string[] {
    const out: string[] = [];
    for (const word of this.preTokenise(this.normalise(text))) this.wordPieces(word, out);
    return out;
  }

  /** [CLS] tokens [SEP], truncated to maxLength, with their ids. */
  encode(text: string): Encoded {
    const c = this.config;
    const body = this.tokenise(text).slice(0, c.maxLength - 2);
    const tokens = [c.clsToken, ...body, c.sepToken];
    return { tokens, ids: tokens.map((t) => c.vocab.get(t) ?? this.unkId) };
  }
}

const DEFAULTS = {
  lowercase: true,
  stripAccents: undefined,
  handleChineseChars: true,
  cleanText: true,
  unkToken: '[UNK]',
  clsToken: '[CLS]',
  sepToken: '[SEP]',
  padToken: '[PAD]',
  continuingPrefix: '##',
  maxInputCharsPerWord: 100,
  maxLength: 512,
} as const;

/** A tokenizer from a vocab.txt (one token a line, its id its line number); BERT-uncased defaults. */
export function wordPieceFromVocabTxt(
  text: string,
  file = 'vocab.txt',
  options: { lowercase?: boolean; maxLength?: number } = {},
): WordPieceTokenizer {
  const vocab = new Map<string, number>();
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((line, i) => {
    const token = line.replace(/\r$/, '');
    if (!vocab.has(token)) vocab.set(token, i);
  });
  if (vocab.size === 0) throw new TokenizerFileError(file, 'holds no token');
  return new WordPieceTokenizer({ ...DEFAULTS, ...options, vocab }, file);
}

function field(obj: unknown, key: string): unknown {
  return typeof obj === 'object' && obj !== null ? (obj as Record<string, unknown>)[key] : undefined;
}

/** A tokenizer from a Hugging Face tokenizer.json whose model is WordPiece (BERT-class models). */
export function wordPieceFromTokenizerJson(text: string, file = 'tokenizer.json'): WordPieceTokenizer {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TokenizerFileError(file, `not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const model = field(json, 'model');
  if (field(model, 'type') !== 'WordPiece')
    throw new TokenizerFileError(
      file,
      `model.type is ${JSON.stringify(field(model, 'type'))}, not "WordPiece"`,
    );
  const rawVocab = field(model, 'vocab');
  if (typeof rawVocab !== 'object' || rawVocab === null || Array.isArray(rawVocab))
    throw new TokenizerFileError(file, 'model.vocab is not an object of token → id');
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(rawVocab)) {
    if (!Number.isInteger(id) || (id as number) < 0)
      throw new TokenizerFileError(file, `model.vocab[${JSON.stringify(token)}] is not a token id`);
    vocab.set(token, id as number);
  }
  const normaliser = field(json, 'normalizer');
  const bool = (v: unknown, d: boolean): boolean => (typeof v === 'boolean' ? v : d);
  const str = (v: unknown, d: string): string => (typeof v === 'string' ? v : d);
  const int = (v: unknown, d: number): number => (Number.isInteger(v) ? (v as number) : d);
  const bert = field(normaliser, 'type') === 'BertNormalizer';
  const strip = field(normaliser, 'strip_accents');
  const truncation = field(json, 'truncation');
  return new WordPieceTokenizer(
    {
      vocab,
      lowercase: bert ? bool(field(normaliser, 'lowercase'), true) : false,
      stripAccents: bert && typeof strip === 'boolean' ? strip : bert ? undefined : false,
      handleChineseChars: bert ? bool(field(normaliser, 'handle_chinese_chars'), true) : false,
      cleanText: bert ? bool(field(normaliser, 'clean_text'), true) : false,
      unkToken: str(field(model, 'unk_token'), DEFAULTS.unkToken),
      clsToken: DEFAULTS.clsToken,
      sepToken: DEFAULTS.sepToken,
      padToken: str(field(field(json, 'padding'), 'pad_token'), DEFAULTS.padToken),
      continuingPrefix: str(field(model, 'continuing_subword_prefix'), DEFAULTS.continuingPrefix),
      maxInputCharsPerWord: int(field(model, 'max_input_chars_per_word'), DEFAULTS.maxInputCharsPerWord),
      maxLength: int(field(truncation, 'max_length'), DEFAULTS.maxLength),
    },
    file,
  );
}
