import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { contentHash } from '../../common/canonical/jcs.js';
import { OpError } from '../../common/contract/index.js';
import { awkwardText, fuzz, mutated } from '../../../test/support/fuzz.js';
import { parseDesiredDocument } from './document.js';

// Desired-state text is untrusted input to the core (any user allowed to plan sends it). Whatever it is,
// the parser answers with a document or a ParseError/SchemaError that says where; never anything else,
// and every document it accepts can be hashed (the plan hash is taken over it).
const documents = fc
  .record({
    section: fc.dictionary(fc.oneof(awkwardText, fc.constantFrom('location', '__proto__')), fc.jsonValue(), {
      maxKeys: 4,
    }),
    spaced: fc.boolean(),
    comment: fc.boolean(),
  })
  .map(({ section, spaced, comment }) => {
    const text = JSON.stringify({ version: 1, plugins: { hostname: section } }, null, spaced ? 2 : undefined);
    return comment ? `// desired state\n${text.replace('"plugins"', '/* c */ "plugins"')}` : text;
  });
const deep = fc
  .tuple(fc.nat(200), fc.constantFrom('[', '{"a":', '["x",'), fc.boolean())
  .map(
    ([n, open, closed]) =>
      `{"version":1,"plugins":{"h":${open.repeat(n)}1${closed ? (open === '[' ? ']' : '}').repeat(n) : ''}}}`,
  );
const duplicated = fc
  .tuple(fc.constantFrom('version', 'plugins', 'hostname', 'location'), fc.jsonValue())
  .map(([key, v]) => {
    const value = JSON.stringify(v);
    return `{"version":1,"plugins":{"hostname":{"location":"a"}},"${key}":${value}, "${key}":${value}}`;
  });
const inputs = fc.oneof(awkwardText, documents, mutated(documents), deep, duplicated);

describe('parseDesiredDocument under fuzzing', () => {
  it('answers a document or a ParseError/SchemaError with a position, never anything else', () => {
    fuzz(
      'desired-state JSONC',
      inputs,
      (text) => {
        let parsed: ReturnType<typeof parseDesiredDocument>;
        try {
          parsed = parseDesiredDocument(text, 'fuzz.jsonc');
        } catch (e) {
          if (!(e instanceof OpError)) throw e;
          expect(['ParseError', 'SchemaError']).toContain(e.code);
          expect(e.where).toMatchObject({ file: 'fuzz.jsonc' });
          expect(e.where?.line).toBeGreaterThan(0);
          expect(e.where?.column).toBeGreaterThan(0);
          return;
        }
        expect(parsed.doc.version).toBe(1);
        // what the engine does next: hash it (lone surrogates have no canonical form)
        contentHash(parsed.doc.plugins);
        // strict JSON it accepts (so no duplicate key) means what JSON.parse says it means
        let strict: unknown;
        try {
          strict = JSON.parse(text.replace(/^\uFEFF/, ''));
        } catch {
          return;
        }
        expect(parsed.doc.plugins).toEqual((strict as { plugins: unknown }).plugins);
      },
      { seed: 12, runs: 20_000, perInputMs: 250 },
    );
  });
});
