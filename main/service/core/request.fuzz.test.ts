import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Manager1, OpError, type MethodName } from '../../common/contract/index.js';
import { awkwardText, fuzz, mutated } from '../../../test/support/fuzz.js';
import { parseManager1Request } from './service.js';

// Every Manager1 request is a JSON string from any bus user, read before anything else happens to it.
// Whatever it holds, the core reads a request or refuses it with InvalidArgument; never anything else.
const methods = Object.keys(Manager1) as MethodName[];
/** The field names each method's request schema knows, so inputs reach past the first check. */
const fieldsOf = (m: MethodName): string[] =>
  Object.keys((Manager1[m].request as unknown as { shape?: Record<string, unknown> }).shape ?? {});
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  awkwardText,
  fc.constantFrom(-1, 2 ** 53, 1e308, 0.5, 'a'.repeat(70), '0'.repeat(64), 'f'.repeat(64), 'ApplyProgress'),
);
const requests = fc.constantFrom(...methods).chain((method) =>
  fc.record({
    method: fc.constant(method),
    body: fc.oneof(
      awkwardText,
      fc.jsonValue().map((v) => JSON.stringify(v)),
      mutated(
        fc
          .dictionary(
            fc.oneof(fc.constantFrom(...fieldsOf(method), 'client', '__proto__'), awkwardText),
            value,
            {
              maxKeys: 4,
            },
          )
          .map((o) => JSON.stringify(o)),
      ),
      fc.nat(5000).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
    ),
  }),
);

describe('Manager1 request payloads under fuzzing', () => {
  it('are read or refused with InvalidArgument, for every method', () => {
    let accepted = 0;
    fuzz(
      'D-Bus request payloads (Manager1 schemas)',
      requests,
      ({ method, body }) => {
        try {
          parseManager1Request(body, method);
          accepted += 1;
        } catch (e) {
          if (!(e instanceof OpError)) throw e;
          expect(e.code).toBe('InvalidArgument');
        }
      },
      { seed: 61, runs: 20_000, perInputMs: 250 },
    );
    console.log(`fuzz D-Bus request payloads: ${accepted} accepted`);
    expect(accepted).toBeGreaterThan(0);
  });
});
