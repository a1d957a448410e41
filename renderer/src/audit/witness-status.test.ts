import { describe, expect, it } from 'vitest';
import { witnessNotice } from './witness-status.js';

const checkpoint = { size: 12, root: 'q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQ', seenAt: '2026-01-02T00:00:00Z' };

describe('witnessNotice', () => {
  it('says in sync, with the proof when the log grew', () => {
    expect(witnessNotice({ status: 'in-sync', endpoint: 'e', checkpoint })).toMatchObject({
      tone: 'ok',
      title: 'Witness: in sync',
      detail: expect.stringContaining('12 entries, root q83vEjRWeJCr…') as unknown,
    });
    const grew = witnessNotice({
      status: 'in-sync',
      endpoint: 'e',
      checkpoint,
      previous: { size: 1, root: 'x', seenAt: '2026-01-01T00:00:00Z' },
    });
    expect(grew.detail).toMatch(/extends the 1 entry you last saw on 2026-01-01T00:00:00Z/);
    const local = witnessNotice(
      { status: 'in-sync', endpoint: 'e', checkpoint, previous: { size: 1, root: 'x', seenAt: 'T' } },
      (iso) => `<${iso}>`,
    );
    expect(local.detail).toContain('saw on <T>');
  });

  it('names first contact as trust on first use', () => {
    const n = witnessNotice({ status: 'first-contact', endpoint: 'unix:path=/run/x', checkpoint });
    expect(n.tone).toBe('info');
    expect(n.title).toMatch(/trusted on first use/);
    expect(n.detail).toContain('unix:path=/run/x');
  });

  it('shows tampering with the witness reason, and a check that did not run as a warning', () => {
    expect(
      witnessNotice({
        status: 'tampering',
        endpoint: 'unix:path=/run/x',
        reason: 'AUDIT LOG TAMPERING on unix:path=/run/x: the log shrank from 9 to 3 entries',
      }),
    ).toEqual({
      tone: 'bad',
      title: 'AUDIT LOG TAMPERING on unix:path=/run/x',
      detail: 'The log shrank from 9 to 3 entries',
    });
    expect(witnessNotice({ status: 'tampering', endpoint: 'e', reason: 'a new key' }).detail).toBe(
      'A new key',
    );
    expect(witnessNotice({ status: 'not-witnessed', reason: 'switched off' })).toEqual({
      tone: 'warning',
      title: 'Witness did not run',
      detail: 'switched off',
    });
  });
});
