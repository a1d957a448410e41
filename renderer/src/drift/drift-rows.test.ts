import { describe, expect, it } from 'vitest';
import type { DriftResponse } from '../../../main/common/contract/index.js';
import { driftHeadline, driftRows } from './drift-rows.js';

const HASH = 'a'.repeat(64);
const inSync: DriftResponse = {
  planHash: HASH,
  appliedAt: '2026-01-01T00:00:00Z',
  inSync: true,
  drift: [],
  auditSeq: 4,
};

describe('driftRows', () => {
  it('shows each drifted value as applied and as the host has it, absence spelled out', () => {
    const r: DriftResponse = {
      ...inSync,
      inSync: false,
      drift: [
        { plugin: 'beta', path: '/plugins/beta/values/b', expected: '1', actual: 'by hand' },
        { plugin: 'alpha', path: '/plugins/alpha/values/gone', expected: 'x', actual: undefined },
      ],
    };
    expect(driftRows(r)).toEqual([
      { plugin: 'beta', path: '/plugins/beta/values/b', applied: '"1"', host: '"by hand"' },
      { plugin: 'alpha', path: '/plugins/alpha/values/gone', applied: '"x"', host: '(absent)' },
    ]);
  });
});

describe('driftHeadline', () => {
  it('says in sync, how many values drifted, or that nothing was applied yet', () => {
    expect(driftHeadline(inSync)).toBe('In sync with applied plan');
    const one = { plugin: 'beta', path: '/b', expected: '1', actual: '2' };
    expect(driftHeadline({ ...inSync, inSync: false, drift: [one] })).toBe(
      '1 value drifted from applied plan',
    );
    expect(driftHeadline({ ...inSync, inSync: false, drift: [one, one] })).toBe(
      '2 values drifted from applied plan',
    );
    expect(driftHeadline({ ...inSync, planHash: null, appliedAt: null })).toMatch(
      /^Nothing has been applied on this host yet/,
    );
  });
});
