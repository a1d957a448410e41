import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ErrorCode, ErrorPayload } from './errors.js';
import { CONTRACT_VERSION, contractVersionOf, introspectionXml, Manager1, Signals } from './manager1.js';

// The version marker is only honest if it moves when the contract does: this fingerprint of every
// method, payload schema, signal and error code fails the test on any change, until someone has
// decided whether the change needs a new CONTRACT_VERSION and recorded the new fingerprint.
const RECORDED = {
  version: 2,
  fingerprint: 'da481216de6c83e6ebbad26aaaea32b5a7ab8a59d4497a7f12daa3cfa9bfc032',
};

const schema = (s: z.ZodType, io: 'input' | 'output'): unknown =>
  z.toJSONSchema(s, { io, unrepresentable: 'any' });

function contractFingerprint(): string {
  const shape = {
    methods: Object.entries(Manager1).map(([name, m]) => [
      name,
      m.action,
      schema(m.request, 'input'),
      schema(m.response, 'output'),
    ]),
    signals: Object.entries(Signals).map(([name, s]) => [name, schema(s, 'output')]),
    errors: [ErrorCode.options, schema(ErrorPayload, 'output')],
  };
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex');
}

describe('CONTRACT_VERSION', () => {
  it('is published in the introspection XML, where a client reads it back', () => {
    expect(contractVersionOf(introspectionXml())).toBe(CONTRACT_VERSION);
    expect(contractVersionOf('<node><interface name="org.opdbus.Manager1"/></node>')).toBeUndefined();
  });

  it('was reconsidered at the last change of the contract', () => {
    const now = { version: CONTRACT_VERSION, fingerprint: contractFingerprint() };
    expect(
      now,
      'the contract changed: if a client or core of the previous build would misread it, raise CONTRACT_VERSION (manager1.ts); then record this version and fingerprint in RECORDED',
    ).toEqual(RECORDED);
  });
});
