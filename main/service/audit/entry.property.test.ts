import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AuditKind, type AuditEntry } from '../../common/contract/payloads.js';
import { canonicalEntryText, fieldsOf, parseBody, scanCanonicalBody } from './entry.js';

const SEED = 42;
const HEX = '0123456789abcdef';
const hex64 = fc.array(fc.constantFrom(...HEX), { minLength: 64, maxLength: 64 }).map((a) => a.join(''));
// Strings with the characters that need care: quotes, backslashes, controls, astral pairs, lone surrogates.
const text = fc.string({
  unit: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('a', 'Z', ' ', '1', 'é', '€') },
    { weight: 2, arbitrary: fc.constantFrom('"', '\\', '\n', '\u0001', '\u007f', '\u2028', '/') },
    { weight: 1, arbitrary: fc.constantFrom('😀', '\ud800', '\udc00') },
  ),
  maxLength: 12,
});
const number = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
  fc.constantFrom(0, -0, 0.1, 1e-6, 1e-7, 1e21, 12.5, 123456789012345.6),
);
const entry: fc.Arbitrary<AuditEntry> = fc.record({
  seq: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
  time: text,
  kind: fc.constantFrom(...AuditKind.options),
  actor: fc.record(
    { uid: fc.oneof(fc.constant(null), fc.integer()), subject: text, action: text, client: text },
    { requiredKeys: ['uid', 'subject'] },
  ),
  plugin: fc.oneof(fc.constant(null), text),
  summary: text,
  payload_hash: fc.oneof(fc.constant(null), hex64),
  durations: fc.oneof(
    fc.constant(null),
    fc.dictionary(fc.oneof(text, fc.constantFrom('1', '10', '__proto__')), number),
  ),
  prev: hex64,
});

/** A body and small edits of it: a character replaced, inserted or removed anywhere. */
const bodies = entry.chain((e) => {
  const body = canonicalEntryText(e) || JSON.stringify(e);
  return fc.oneof(
    fc.constant({ body, prev: e.prev }),
    fc.record({
      body: fc
        .tuple(
          fc.nat(body.length),
          fc.constantFrom('', '"', '\\', ' ', '0', '1', '.', 'e', ',', '}', 'a'),
          fc.nat(2),
        )
        .map(([at, c, cut]) => body.slice(0, at) + c + body.slice(at + cut)),
      prev: fc.constant(e.prev),
    }),
  );
});

describe('scanCanonicalBody', () => {
  it('accepts a body only when parseBody does, with the same fields; and every canonical body it can', () => {
    const runs = 20_000;
    console.log(`entry property "scan implies parseBody": ${runs} runs, seed ${SEED}`);
    let accepted = 0;
    fc.assert(
      fc.property(bodies, ({ body, prev }) => {
        const scanned = scanCanonicalBody(body, prev);
        const parsed = parseBody(body);
        if (scanned !== undefined) {
          accepted += 1;
          expect(typeof parsed).not.toBe('string');
          expect(scanned).toEqual(fieldsOf(parsed as AuditEntry));
        } else if (typeof parsed !== 'string' && parsed.prev === prev && !/[\u0000-\u001f]/.test(body)) {
          // Not taken by the fast reader though parseBody accepts it: only for escapes it checks the long way
          // (and then it still must agree) or numbers it leaves to JSON.stringify; never for plain ASCII bodies.
          expect(/^[\x20-\x7e]*$/.test(body) && !body.includes('\\')).toBe(false);
        }
      }),
      { seed: SEED, numRuns: runs },
    );
    console.log(`entry property: ${accepted} of ${runs} bodies taken by the fast reader`);
    expect(accepted).toBeGreaterThan(runs / 20);
  });
});
