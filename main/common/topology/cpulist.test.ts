import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { MAX_CPU_ID, formatCpuList, parseCpuList, parseCpuMap } from './cpulist.js';
import { SysfsFormatError } from './sysfs-text.js';

const SEED = 6;
const RUNS = 500;

describe('parseCpuList', () => {
  it('reads ranges and single ids', () => {
    expect(parseCpuList('0-3,8-11')).toEqual([0, 1, 2, 3, 8, 9, 10, 11]);
    expect(parseCpuList('0,4,8,12')).toEqual([0, 4, 8, 12]);
    expect(parseCpuList('0-2,33-34,45,72-73\n')).toEqual([0, 1, 2, 33, 34, 45, 72, 73]);
  });

  it('reads the empty list (a node without CPUs) as no ids', () => {
    expect(parseCpuList('')).toEqual([]);
    expect(parseCpuList('\n')).toEqual([]);
  });

  it('accepts a one-element range and repeated or unordered ids', () => {
    expect(parseCpuList('0,2-2')).toEqual([0, 2]);
    expect(parseCpuList('5,1-3,2')).toEqual([1, 2, 3, 5]);
  });

  it('strips the trailing newline and NUL bytes of older kernels', () => {
    expect(parseCpuList('0-7\n\0')).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(parseCpuList('\0')).toEqual([]);
  });

  it.each([
    ['letters', 'abc'],
    ['a reversed range', '3-1'],
    ['an open range', '0-'],
    ['a negative id', '-1'],
    ['an empty element', '0,,2'],
    ['a NUL inside', '0-\u00003'],
    ['a hex mask', 'ff,00000000'],
    ['spaces inside', '0, 1'],
    ['an id beyond the limit', `0-${MAX_CPU_ID + 1}`],
    ['a huge id', '0-18446744073709551616'],
  ])('rejects %s', (_what, text) => {
    expect(() => parseCpuList(text)).toThrow(SysfsFormatError);
  });
});

describe('parseCpuMap', () => {
  it('reads 32-bit words, most significant first', () => {
    expect(parseCpuMap('ff,00000000')).toEqual([32, 33, 34, 35, 36, 37, 38, 39]);
    expect(parseCpuMap('00000000,0000ffff')).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(parseCpuMap('80000000,00000001')).toEqual([0, 63]);
  });

  it('reads a short leading word (kernels with NR_CPUS not a multiple of 32)', () => {
    expect(parseCpuMap('0000,00000000,00000003')).toEqual([0, 1]);
    expect(parseCpuMap('8000,00000000')).toEqual([47]);
  });

  it('reads the empty mask and trailing NULs', () => {
    expect(parseCpuMap('00000000')).toEqual([]);
    expect(parseCpuMap('000aaaa0\n\0')).toEqual([5, 7, 9, 11, 13, 15, 17, 19]);
  });

  it.each([
    ['an empty file', ''],
    ['a list', '0-3'],
    ['a word of 9 digits', '100000000'],
    ['a non-hex word', '0000000g'],
    ['an empty word', 'ff,,00'],
    ['a negative word', '-1'],
    ['too many words', Array.from({ length: (MAX_CPU_ID + 1) / 32 + 1 }, () => '0').join(',')],
  ])('rejects %s', (_what, text) => {
    expect(() => parseCpuMap(text)).toThrow(SysfsFormatError);
  });
});

describe('formatCpuList', () => {
  it('writes ranges the way the kernel does', () => {
    expect(formatCpuList([0, 1, 2, 3, 8, 9, 10, 11])).toBe('0-3,8-11');
    expect(formatCpuList([0, 2])).toBe('0,2');
    expect(formatCpuList([])).toBe('');
    expect(formatCpuList([5, 3, 4, 4])).toBe('3-5');
  });
});

const idSets = fc.uniqueArray(fc.integer({ min: 0, max: 4095 }), { maxLength: 200 });

describe(`cpu set formats (fast-check, seed ${SEED}, ${RUNS} runs each)`, () => {
  it(`list format round-trips any id set (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(idSets, (ids) => {
        expect(parseCpuList(formatCpuList(ids))).toEqual([...ids].sort((a, b) => a - b));
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it(`mask format decodes what a kernel-style encoder writes (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(idSets, fc.integer({ min: 1, max: 8 }), (ids, extraWords) => {
        // Encode as the kernel does: fixed-width 32-bit hex words, most significant first.
        const wordCount = Math.floor(Math.max(0, ...ids) / 32) + extraWords;
        const words = Array.from({ length: wordCount }, (_, index) => {
          const low = (wordCount - 1 - index) * 32;
          const bits = ids
            .filter((id) => id >= low && id < low + 32)
            .reduce((sum, id) => sum + 2 ** (id - low), 0);
          return bits.toString(16).padStart(8, '0');
        });
        expect(parseCpuMap(`${words.join(',')}\n`)).toEqual([...ids].sort((a, b) => a - b));
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it(`never throws anything but SysfsFormatError on arbitrary text (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (text) => {
        for (const parse of [parseCpuList, parseCpuMap]) {
          try {
            const ids = parse(text);
            expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id <= MAX_CPU_ID)).toBe(true);
          } catch (error) {
            expect(error).toBeInstanceOf(SysfsFormatError);
          }
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
