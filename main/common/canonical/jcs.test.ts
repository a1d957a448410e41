import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, contentHash, sha256Hex } from './jcs.js';

// canonicalJson is written for speed (plans of 10,000 flows are hashed on every plan); the hashes on
// disk (plans, audit payloads, snapshots) were taken with the `canonicalize` package, so its text
// must stay the same byte for byte: checked here on random JSON values and the awkward cases.
const outcome = (f: () => string | undefined): { text?: string; error?: string } => {
  try {
    return { text: f() };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
};

describe('canonicalJson', () => {
  it('writes the same text as the canonicalize package on random JSON values (unicode keys, deep nesting, numbers)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.string({ unit: 'grapheme' }), (value, key) => {
        const v: Record<string, unknown> = { z: [value, { y: -0, x: 0.1 + 0.2, w: 1e21 }] };
        v[key] = value;
        expect(canonicalJson(v)).toBe(canonicalize(v));
      }),
      { numRuns: 400 },
    );
  });

  it('refuses and keeps what the package refuses and keeps', () => {
    const cycle: Record<string, unknown> = {};
    cycle['self'] = cycle;
    const cases: unknown[] = [
      { a: NaN },
      [Infinity],
      { s: 'x\uD800y' },
      { '\uDC00': 1 },
      cycle,
      { a: undefined, b: 1, c: Symbol('s') },
      [undefined, Symbol('s'), 2],
      { d: new Date(0), t: { toJSON: () => ({ b: 2, a: 1 }) } },
      { emoji: '\uD83D\uDE00', é: 'e\u0301', '\u007f': '\u2028' },
      { b: true, n: null, f: false, k: { '10': 1, '9': 2, a: 3, A: 4, '': 5 } },
    ];
    for (const c of cases) {
      expect(outcome(() => canonicalJson(c))).toEqual(outcome(() => canonicalize(c)));
    }
  });

  it('the hash of {desired, current} composed from the canonical text of each is contentHash of the pair (the engine plans so)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.jsonValue({ maxDepth: 4 }), (desired, current) => {
        const composed = sha256Hex(
          `{"current":${canonicalJson(current)},"desired":${canonicalJson(desired)}}`,
        );
        expect(composed).toBe(contentHash({ desired, current }));
      }),
      { numRuns: 200 },
    );
  });
});
