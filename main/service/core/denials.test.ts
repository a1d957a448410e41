import { afterEach, describe, expect, it } from 'vitest';
import { DenialAggregator, type DenialRecord } from './denials.js';

// Any bus user can be refused; each refusal must be on record without one entry per refusal.
let clock = 0;
let written: DenialRecord[] = [];
let agg: DenialAggregator | undefined;
const start = (): DenialAggregator => {
  clock = 1_000_000;
  written = [];
  agg = new DenialAggregator(
    (r) => written.push(r),
    60_000,
    () => clock,
  );
  return agg;
};
afterEach(() => agg?.stop());

const nobody = { uid: 65534, subject: ':1.9', action: 'org.opdbus.apply' };

describe('DenialAggregator', () => {
  it('records the first denial at once and 4,999 repeats as one entry with their count', () => {
    const a = start();
    for (let i = 0; i < 5000; i++) a.denied({ actor: nobody, method: 'Apply', reason: 'polkit says no' });
    expect(written).toEqual([{ actor: nobody, summary: 'denied Apply: polkit says no' }]);
    clock += 61_000;
    a.flush(false);
    expect(written).toHaveLength(2);
    expect(written[1]?.summary).toBe('denied Apply 4999 more time(s) in 61 s: polkit says no');
    // the next one starts a new window, recorded at once again
    a.denied({ actor: nobody, method: 'Apply', reason: 'polkit says no' });
    expect(written).toHaveLength(3);
  });

  it('keeps kinds apart (uid, method, reason) and writes every open count at stop', () => {
    const a = start();
    const other = { ...nobody, uid: 1000 };
    for (const actor of [nobody, other, nobody, other])
      a.denied({ actor, method: 'Plan', reason: 'polkit says no' });
    a.denied({ actor: nobody, method: 'Query', reason: 'polkit says no' });
    expect(written.map((w) => w.summary)).toEqual([
      'denied Plan: polkit says no',
      'denied Plan: polkit says no',
      'denied Query: polkit says no',
    ]);
    a.stop();
    agg = undefined;
    expect(written.filter((w) => w.summary.includes('1 more time')).map((w) => w.actor.uid)).toEqual([
      65534, 1000,
    ]);
  });

  it('bounds the kinds it counts and still counts the rest', () => {
    const a = start();
    for (let i = 0; i < 1100; i++) a.denied({ actor: { ...nobody, uid: i }, method: 'Plan', reason: 'no' });
    expect(written).toHaveLength(1024);
    a.stop();
    agg = undefined;
    expect(written.at(-1)?.summary).toBe(
      'denied 76 more call(s) of other kinds (more than 1024 kinds at once)',
    );
  });
});
