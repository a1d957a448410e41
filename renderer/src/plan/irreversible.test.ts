import { describe, expect, it } from 'vitest';
import { confirmationOf, irreversibleRanOf, toggled, unconfirmed } from './irreversible.js';

const PLAN_LISTS = ['alpha/gone', 'beta/drop'];

describe('unconfirmed', () => {
  it("names each irreversible change not ticked yet, in the plan's order", () => {
    expect(unconfirmed(PLAN_LISTS, new Set())).toEqual(['alpha/gone', 'beta/drop']);
    expect(unconfirmed(PLAN_LISTS, new Set(['beta/drop']))).toEqual(['alpha/gone']);
    expect(unconfirmed(PLAN_LISTS, new Set(PLAN_LISTS))).toEqual([]);
  });

  it('is satisfied by nothing for a plan without irreversible changes, and ignores stray ticks', () => {
    expect(unconfirmed([], new Set())).toEqual([]);
    expect(unconfirmed(['alpha/gone'], new Set(['alpha/other']))).toEqual(['alpha/gone']);
  });
});

describe('confirmationOf', () => {
  it('carries the plan’s list exactly as the core made it, and nothing when it is empty', () => {
    expect(confirmationOf(PLAN_LISTS)).toEqual({ confirmIrreversible: ['alpha/gone', 'beta/drop'] });
    expect(confirmationOf([])).toEqual({});
  });

  it('copies the list: the request never shares the plan’s array', () => {
    const c = confirmationOf(PLAN_LISTS);
    expect(c.confirmIrreversible).not.toBe(PLAN_LISTS);
  });
});

describe('toggled', () => {
  it('adds and removes one name without touching the set it was given', () => {
    const none: ReadonlySet<string> = new Set();
    const one = toggled(none, 'alpha/gone', true);
    expect([...one]).toEqual(['alpha/gone']);
    expect(none.size).toBe(0);
    expect([...toggled(one, 'alpha/gone', false)]).toEqual([]);
  });
});

describe('irreversibleRanOf', () => {
  it('reads the irreversible changes that had run from a failed apply’s details', () => {
    expect(irreversibleRanOf({ cause: {}, irreversibleRan: ['alpha/gone'] })).toEqual(['alpha/gone']);
    expect(irreversibleRanOf({ cause: {} })).toEqual([]);
    expect(irreversibleRanOf(undefined)).toEqual([]);
    expect(irreversibleRanOf({ irreversibleRan: 'alpha/gone' })).toEqual([]);
    expect(irreversibleRanOf({ irreversibleRan: ['alpha/gone', 3] })).toEqual(['alpha/gone']);
  });
});
