import { describe, expect, it } from 'vitest';
import type { ApplyProgress } from '../../../main/common/contract/index.js';
import { convergeSteps } from './converge-progress.js';

const p = (
  planId: string,
  step: ApplyProgress['step'],
  message: string,
  plugin: string | null = null,
): ApplyProgress => ({
  planId,
  plugin,
  step,
  message,
});

describe('convergeSteps', () => {
  it("keeps the steps of the apply that names the reviewed plan's hash, in order", () => {
    const events = [
      p('other', 'start', 'applying plan 1111'),
      p('mine', 'start', 'applying plan abcd'),
      p('other', 'apply', 'x', 'alpha'),
      p('mine', 'checkpoint', 'checkpoint of hostname saved', 'hostname'),
      p('mine', 'verify', 'verifying hostname', 'hostname'),
      p('mine', 'done', 'plan abcd applied and verified'),
    ];
    expect(convergeSteps(events, 'abcd').map((e) => e.step)).toEqual([
      'start',
      'checkpoint',
      'verify',
      'done',
    ]);
  });
  it('falls back to the first apply that started, and shows nothing before any start', () => {
    expect(convergeSteps([p('a', 'start', 'applying plan 9'), p('a', 'done', 'ok')], 'abcd')).toHaveLength(2);
    expect(convergeSteps([p('a', 'apply', 'stray')], 'abcd')).toEqual([]);
  });
});
