import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OpError } from '../../common/contract/index.js';
import { parseDesiredDocument } from './document.js';

// Strict JSON is read with JSON.parse plus one pass for repeated keys; anything else (comments,
// trailing commas, a repeated key, a surrogate) through jsonc-parser's tree. Both must give the
// same document and the same errors: a trailing comment sends the same text down the tree path.
const viaTree = (text: string): string => `${text}\n// through the parse tree`;
const outcome = (text: string): unknown => {
  try {
    return { doc: parseDesiredDocument(text).doc };
  } catch (e) {
    return e instanceof OpError ? { code: e.code, message: e.message } : { thrown: String(e) };
  }
};

describe('parseDesiredDocument: strict JSON and the parse tree agree', () => {
  it('on random sections (unicode and escaped keys, __proto__, nesting)', () => {
    const key = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 6 }),
      fc.constantFrom('__proto__', 'a"b', 'a\\b', 'x/y~'),
    );
    fc.assert(
      fc.property(
        fc.dictionary(key, fc.jsonValue({ maxDepth: 4 }), { maxKeys: 5 }),
        fc.boolean(),
        (section, spaced) => {
          const text = JSON.stringify({ version: 1, plugins: { p: section } }, null, spaced ? 2 : undefined);
          const fast = outcome(text);
          expect(fast).toEqual(outcome(viaTree(text)));
          expect(Object.keys((fast as { doc: { plugins: { p: object } } }).doc.plugins.p)).toEqual(
            Object.keys(section),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a key repeated at any depth, also spelled with escapes, is refused with its position and pointer', () => {
    for (const text of [
      '{"version":1,"plugins":{"p":{"a":1,"b":[{"x":1,"x":2}]}}}',
      '{"version":1,"plugins":{"p":{"a":1,"\\u0061":2}}}',
      '{"version":1,"plugins":{"p":{"__proto__":1,"__proto__":2}}}',
      '{"version":1,"version":1,"plugins":{}}',
    ]) {
      const fast = outcome(text);
      expect(fast).toMatchObject({
        code: 'ParseError',
        message: expect.stringMatching(/^duplicate key/) as unknown,
      });
      expect(fast).toEqual(outcome(viaTree(text)));
    }
    // the same key in sibling objects is no repetition
    expect(outcome('{"version":1,"plugins":{"p":[{"x":1},{"x":2}],"q":{"x":{"x":1}}}}')).toHaveProperty(
      'doc',
    );
  });

  it('a schema error after strict JSON still names its line and column (the tree is built for it)', () => {
    const e = (() => {
      try {
        parseDesiredDocument('{\n  "version": 2,\n  "plugins": {}\n}', 'd.json');
      } catch (err) {
        return err as OpError;
      }
      return undefined;
    })();
    expect(e?.code).toBe('SchemaError');
    expect(e?.where).toMatchObject({ file: 'd.json', line: 2 });
  });
});
