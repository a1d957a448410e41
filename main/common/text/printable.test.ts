import { describe, expect, it } from 'vitest';
import { printable, printableJson } from './printable.js';

describe('printable', () => {
  it('keeps ordinary text, including non-ASCII and astral characters, as it is', () => {
    for (const s of ['plan 1a2b: 1 change(s): hostname/location', 'Büro 4 — €, 😀, 東京', '']) {
      expect(printable(s, 'line')).toBe(s);
      expect(printable(s, 'lines')).toBe(s);
    }
  });

  it('writes ESC, BEL, CR, DEL, other C0 and C1 controls as visible escapes', () => {
    expect(printable('a\u001b[2J\u001b]0;owned\u0007b', 'line')).toBe('a\\x1b[2J\\x1b]0;owned\\x07b');
    expect(printable('ok\rFAILED', 'lines')).toBe('ok\\x0dFAILED');
    expect(printable('\u0000\u007f\u009b31m\u0085', 'lines')).toBe('\\x00\\x7f\\x9b31m\\x85');
  });

  it('writes bidi embeddings, overrides, isolates and marks as escapes (evil does not read as live)', () => {
    expect(printable('user \u202eevil\u202c', 'line')).toBe('user \\u202eevil\\u202c');
    expect(printable('\u2066\u2067\u2068\u2069\u200e\u200f\u061c', 'line')).toBe(
      '\\u2066\\u2067\\u2068\\u2069\\u200e\\u200f\\u061c',
    );
  });

  it('line: every line break and tab becomes a space; lines: line feeds and tabs stay', () => {
    expect(printable('one\ntwo\r\nthree\rfour\u2028five\tsix', 'line')).toBe('one two three four five six');
    expect(printable('one\ntwo\r\nthree\tsix\u2028', 'lines')).toBe('one\ntwo\nthree\tsix\\u2028');
  });

  it('replaces lone surrogates and keeps pairs', () => {
    expect(printable('a\ud800b\udc00c😀', 'line')).toBe('a\ufffdb\ufffdc😀');
  });
});

describe('printableJson', () => {
  it('escapes what JSON.stringify leaves raw and a terminal acts on; the value is the same', () => {
    const value = { s: 'a\u009b2J\u202eb\u2028c\u007f', n: 1 };
    const text = printableJson(JSON.stringify(value));
    expect(text).toBe('{"s":"a\\u009b2J\\u202eb\\u2028c\\u007f","n":1}');
    expect(JSON.parse(text)).toEqual(value);
    expect(printableJson(JSON.stringify({ s: '\u001b' }))).toBe('{"s":"\\u001b"}');
  });
});
