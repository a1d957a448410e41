import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { awkwardText, fuzz, mutated } from '../../../test/support/fuzz.js';
import { Manager1 } from './manager1.js';
import { parseRelayMessage, parseRelayPush, RelayLocal } from './relay.js';

// What the console's page (or anything holding a console socket) sends `serve`, and what the relay pushes
// to the page: parsed without throwing, every refusal an error reply that is never `Internal`.
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
