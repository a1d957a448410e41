import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Manager1 } from './manager1.js';
import { parseRelayMessage, parseRelayPush, RelayLocal } from './relay.js';

// What the console's page (or anything holding a console socket) sends `serve`, and what the relay pushes
// to the page: parsed without throwing, every refusal an error reply that is never `Internal`. The contract
// imports nothing of the project, its tests included: this is test/support/fuzz.ts's shape, inline.
const awkwardText = fc.string({
  unit: fc.constantFrom(
    'a',
    '1',
    ' ',
    '€',
    '{',
    '}',
    '[',
    ']',
    '"',
    ':',
    ',',
    '\\',
    '\n',
    '\u0000',
    '\u001b',
    '\ud800',
    '😀',
  ),
  maxLength: 60,
});
const mutated = (text: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  text.chain((t) =>
    fc
      .array(
        fc.tuple(
          fc.nat(t.length),
          awkwardText.map((s) => s.slice(0, 3)),
          fc.nat(3),
        ),
        { maxLength: 4 },
      )
      .map((edits) => edits.reduce((s, [at, insert, cut]) => s.slice(0, at) + insert + s.slice(at + cut), t)),
  );

/** Runs `check` on each input, failing one that takes longer than perInputMs, and prints the count. */
function fuzz<T>(
  name: string,
  inputs: fc.Arbitrary<T>,
  check: (input: T) => void,
  o: { seed: number; runs: number; perInputMs: number },
): void {
  let ran = 0;
  fc.assert(
    fc.property(inputs, (input) => {
      const started = performance.now();
      check(input);
      const ms = performance.now() - started;
      ran += 1;
      if (ms > o.perInputMs) throw new Error(`${name}: one input took ${ms.toFixed(0)} ms`);
    }),
    { seed: o.seed, numRuns: o.runs },
  );
  console.log(`fuzz ${name}: ${ran} inputs, seed ${o.seed}`);
}
const names = fc.constantFrom(
  ...Object.keys(Manager1),
  ...Object.keys(RelayLocal),
  'constructor',
  '__proto__',
  '',
);
const envelopes = fc
  .record(
    {
      id: fc.oneof(fc.nat(), fc.constantFrom(-1, 1.5, Number.MAX_SAFE_INTEGER + 2), fc.string()),
      method: fc.oneof(names, awkwardText),
      request: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant({}), fc.constant({ document: '{}' })),
      extra: fc.jsonValue({ maxDepth: 1 }),
    },
    { requiredKeys: [] },
  )
  .map((m) => JSON.stringify(m));
const messages = fc.oneof(awkwardText, envelopes, mutated(envelopes));

describe('the relay protocol under fuzzing', () => {
  it('parseRelayMessage: a call, a local call, or an error reply that is not Internal', () => {
    fuzz(
      'WebSocket relay messages (parseRelayMessage)',
      messages,
      (text) => {
        const r = parseRelayMessage(text);
        if ('reply' in r) {
          expect('error' in r.reply).toBe(true);
          if ('error' in r.reply) expect(r.reply.error.code).not.toBe('Internal');
        } else if ('call' in r) {
          expect(Object.hasOwn(Manager1, r.call.method)).toBe(true);
        } else {
          expect(Object.hasOwn(RelayLocal, r.local.method)).toBe(true);
        }
      },
      { seed: 7, runs: 20_000, perInputMs: 250 },
    );
  });

  it('parseRelayPush: a signal the contract names with a payload its schema accepts, or nothing', () => {
    fuzz(
      'relay pushes (parseRelayPush)',
      fc.tuple(
        fc.oneof(fc.constantFrom('Metrics', 'ApplyProgress', 'toString'), awkwardText),
        fc.jsonValue({ maxDepth: 3 }),
      ),
      ([name, payload]) => {
        const push = parseRelayPush(name, payload);
        if (push !== undefined) expect(['Metrics', 'ApplyProgress']).toContain(push.push);
      },
      { seed: 8, runs: 10_000, perInputMs: 250 },
    );
  });
});
