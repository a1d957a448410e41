import { describe, expect, it } from 'vitest';
import { DriftResponse, VerifyResponse } from './payloads.js';

describe('Drift', () => {
  it('accepts a value the host lacks, as it arrives after JSON dropped the undefined', () => {
    const wire = JSON.parse(
      JSON.stringify({
        planHash: 'a'.repeat(64),
        appliedAt: '2026-01-01T00:00:00Z',
        inSync: false,
        drift: [{ plugin: 'files', path: '/plugins/files/files/motd', expected: 'hi', actual: undefined }],
        auditSeq: 3,
      }),
    ) as unknown;
    expect(DriftResponse.parse(wire).drift).toEqual([
      { plugin: 'files', path: '/plugins/files/files/motd', expected: 'hi' },
    ]);
    expect(
      VerifyResponse.safeParse({
        inSync: false,
        drift: [{ plugin: 'p', path: '/x', actual: 1 }],
        auditSeq: 1,
      }).success,
    ).toBe(true);
  });
});
