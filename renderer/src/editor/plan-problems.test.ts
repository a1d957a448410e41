import { describe, expect, it } from 'vitest';
import { planProblems, problemSentence } from './plan-problems.js';

describe('planProblems', () => {
  it("reads the core's per-resource problems and skips what is not one", () => {
    const details = {
      problems: [
        {
          pointer: '/plugins/lxc/containers/0/properties/template',
          message: 'container 100: unknown storage',
          line: 12,
          column: 13,
        },
        { message: 'no position' },
        { message: '' },
        'odd',
        { message: 'bad line', line: -1, column: 1.5 },
      ],
    };
    expect(planProblems(details)).toEqual([
      {
        pointer: '/plugins/lxc/containers/0/properties/template',
        message: 'container 100: unknown storage',
        line: 12,
        column: 13,
      },
      { message: 'no position' },
      { message: 'bad line' },
    ]);
    expect(planProblems(undefined)).toEqual([]);
    expect(planProblems({ problems: 'x' })).toEqual([]);
  });

  it('makes each a sentence that says where', () => {
    expect(
      problemSentence({ message: 'container 100: unknown storage "local-btrfs"', line: 12, column: 13 }),
    ).toBe('Line 12, column 13: Container 100: unknown storage "local-btrfs".');
    expect(problemSentence({ message: 'storages: local (see the config)' })).toBe(
      'Storages: local (see the config)',
    );
  });
});
