import { describe, expect, it } from 'vitest';
import { OpError, WitnessReport } from '../../common/contract/index.js';
import { witnessReport } from './witness-report.js';

describe('witnessReport', () => {
  const endpoint = 'unix:path=/run/x';
  const record = { endpoint, size: 9, root: 'cm9vdA==', seenAt: '2026-01-02T00:00:00Z' };
  const previous = { size: 4, root: 'b2xk', seenAt: '2026-01-01T00:00:00Z' };

  it('maps first-seen to first contact and unchanged/consistent to in sync', async () => {
    expect(
      await witnessReport(() => Promise.resolve({ status: 'first-seen', record }), { endpoint }),
    ).toEqual({
      status: 'first-contact',
      endpoint,
      checkpoint: { size: 9, root: 'cm9vdA==', seenAt: record.seenAt },
    });
    expect(
      await witnessReport(() => Promise.resolve({ status: 'consistent', record, previous }), { endpoint }),
    ).toEqual({
      status: 'in-sync',
      endpoint,
      checkpoint: { size: 9, root: 'cm9vdA==', seenAt: record.seenAt },
      previous,
    });
    expect(
      await witnessReport(() => Promise.resolve({ status: 'unchanged', record }), { endpoint }),
    ).toMatchObject({ status: 'in-sync' });
  });

  it('reports AuditCorrupt as tampering with its reason and the checkpoint seen before', async () => {
    const r = await witnessReport(
      () =>
        Promise.reject(
          new OpError('AuditCorrupt', 'AUDIT LOG TAMPERING on x: history was rewritten', undefined, {
            witness: 'tampered',
            previous: { ...previous, endpoint, note: 'n', verifierKey: 'k', origin: 'o' },
          }),
        ),
      { endpoint },
    );
    expect(r).toEqual({
      status: 'tampering',
      endpoint,
      reason: 'AUDIT LOG TAMPERING on x: history was rewritten',
      previous,
    });
    expect(WitnessReport.parse(r)).toEqual(r);
  });

  it('says why a check did not run: off, skipped, no state dir, another failure', async () => {
    const never = (): Promise<never> => Promise.reject(new Error('must not run'));
    expect(await witnessReport(never, { endpoint, off: true })).toMatchObject({
      status: 'not-witnessed',
      reason: expect.stringMatching(/OP_DBUS_WITNESS=off/) as unknown,
    });
    expect(
      await witnessReport(() => Promise.resolve({ status: 'skipped', reason: 'not authorised' }), {
        endpoint,
      }),
    ).toEqual({ status: 'not-witnessed', reason: 'not authorised' });
    const eacces = Object.assign(new Error('EACCES: permission denied, mkdir'), { code: 'EACCES' });
    expect(await witnessReport(() => Promise.reject(eacces), { endpoint })).toMatchObject({
      status: 'not-witnessed',
      reason: expect.stringMatching(/no writable state directory/) as unknown,
    });
    expect(await witnessReport(() => Promise.reject(new Error('boom')), { endpoint })).toEqual({
      status: 'not-witnessed',
      reason: 'the witness could not run: boom',
    });
  });
});
