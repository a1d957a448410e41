import { Tokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { tinyBert, tinyBertVocab } from './tiny-bert.js';
import { TokenizerFileError, wordPieceFromTokenizerJson, wordPieceFromVocabTxt } from './wordpiece.js';

const { tokenizerJson } = tinyBert(4, 8);
const ours = wordPieceFromTokenizerJson(tokenizerJson);
const reference = new Tokenizer(JSON.parse(tokenizerJson) as object, {});

const HAND = [
  'Hello, World!',
  'wireguard wg0: listen_port 51820 → 51821, peer laptop-carol added',
  'Café résumé naïve garçon Über Zürich München',
  'ÀÉÎÕÜ àéîõü ñ ç ß ø å æ œ',
  '東京大学 北京 中文字',
  '日本語のテキスト',
  '人工智能 and 生活',
  '한국어 텍스트',
  'Привет, мир',
  'مرحبا بالعالم',
  'γειά σου κόσμε',
  '🙂 emoji 👍🏽 test',
  'tabs\tand\nnewlines\r\nhere',
  '  leading and trailing  ',
  '',
  ' ',
  '...',
  '!!!???',
  "don't won't can't",
  'e-mail user@example.com http://example.com/a?b=c&d=e',
  '(parentheses) [brackets] {braces} <angles>',
  '$100 #1 50% a+b=c ~tilde` ^caret |pipe \\backslash',
  '10.0.0.1/24 fe80::1 00:11:22:33:44:55',
  'zero\u200bwidth\u200cjoiner',
  'soft\u00adhyphen',
  'non\u00a0breaking space',
  'control\u0007bell\u0000nul\ufffdreplacement',
  'combining e\u0301 a\u0300',
  'unknownwordzzzxqj',
  'Ωmega µicro',
  'x'.repeat(100),
  'x'.repeat(101),
  'supercalifragilisticexpialidocious'.repeat(3),
  'ÉCOLE ÉLÉMENTAIRE',
  'ﬁ ligature ﬀ',
  '１２３ fullwidth ＡＢＣ',
  '¿Qué? ¡Sí!',
  '«guillemets» „quotes“ ‘single’',
  '— em dash – en dash',
  '§ ¶ † ‡ • …',
  'ovs-vsctl add-br br0 -- set bridge br0',
  'lxc-ls --fancy',
  'systemd-resolved.service restarted',
  'CamelCaseIdentifier snake_case_name kebab-case-name',
  'über-long-hyphenated-compound-word-with-many-parts',
];

const WORDS = [
  'the',
  'port',
  'changed',
  'unset',
  'preset',
  'interface',
  'café',
  'zürich',
  'qwxz',
  'naïveté',
  'interlinking',
  'hostnames',
];
const SEPARATORS = [' ', ', ', '. ', ' — ', '\t', '!', '?', '中', ' 東京 ', '🙂', '…'];

function generated(): string[] {
  const out: string[] = [];
  let seed = 7;
  const next = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let i = 0; i < 200; i++) {
    const parts: string[] = [];
    const count = 1 + next(8);
    for (let j = 0; j < count; j++) {
      let w = WORDS[next(WORDS.length)] ?? '';
      if (next(4) === 0) w = w.toUpperCase();
      parts.push(w, SEPARATORS[next(SEPARATORS.length)] ?? ' ');
    }
    out.push(parts.join(''));
  }
  return out;
}

const STRINGS = [...HAND, ...generated()];

describe('our WordPiece tokenizer against @huggingface/tokenizers', () => {
  it(`splits ${STRINGS.length} strings into the same tokens (accents, CJK, punctuation, unknown words, long words)`, () => {
    expect(STRINGS.length).toBeGreaterThanOrEqual(200);
    const mismatches = STRINGS.filter(
      (s) => JSON.stringify(ours.tokenise(s)) !== JSON.stringify(reference.tokenize(s)),
    );
    expect(mismatches.map((s) => ({ s, ours: ours.tokenise(s), reference: reference.tokenize(s) }))).toEqual(
      [],
    );
    // spot checks that the comparison is not between two no-ops
    expect(ours.tokenise('Café Zürich, 東京!')).toEqual(['cafe', 'zurich', ',', '東', '京', '!']);
    expect(ours.tokenise('preset interlinking')).toEqual([
      'pre',
      '##s',
      '##e',
      '##t',
      'inter',
      '##l',
      '##i',
      '##n',
      '##k',
      '##ing',
    ]);
    expect(ours.tokenise('한국어')).toEqual(['[UNK]']);
    // the unknown token appears, so the comparison covers it
    expect(STRINGS.some((s) => ours.tokenise(s).includes('[UNK]'))).toBe(true);
  });

  it('gives the same ids with [CLS] and [SEP] as the reference', () => {
    for (const s of STRINGS) {
      if (ours.tokenise(s).length > 126) continue;
      expect(ours.encode(s).ids, s).toEqual(reference.encode(s).ids);
    }
  });

  it('truncates over-long input to the model length, ending in [SEP]', () => {
    const long = Array.from({ length: 400 }, (_, i) => WORDS[i % WORDS.length]).join(' ');
    const full = reference.encode(long).ids;
    expect(full.length).toBeGreaterThan(128);
    const cut = ours.encode(long).ids;
    expect(cut).toHaveLength(128);
    expect(cut.slice(0, 127)).toEqual(full.slice(0, 127));
    expect(cut[127]).toBe(ours.sepId);
  });

  it('reads vocab.txt the same as tokenizer.json (BERT-uncased defaults)', () => {
    const fromTxt = wordPieceFromVocabTxt(tinyBertVocab().join('\n') + '\n', 'vocab.txt', { maxLength: 128 });
    for (const s of STRINGS.slice(0, 60)) expect(fromTxt.encode(s).ids, s).toEqual(ours.encode(s).ids);
  });

  it('refuses tokenizer files it cannot use, saying why', () => {
    expect(() => wordPieceFromTokenizerJson('{', 't.json')).toThrow(TokenizerFileError);
    expect(() => wordPieceFromTokenizerJson('{"model":{"type":"BPE"}}', 't.json')).toThrow(/not "WordPiece"/);
    expect(() =>
      wordPieceFromTokenizerJson('{"model":{"type":"WordPiece","vocab":{"a":0}}}', 't.json'),
    ).toThrow(/lacks the special token \[CLS\]/);
    expect(() => wordPieceFromVocabTxt('', 'v.txt')).toThrow(/holds no token/);
  });
});
