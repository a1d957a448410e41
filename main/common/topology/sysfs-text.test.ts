import { describe, expect, it } from 'vitest';

import {
  SysfsFormatError,
  parseCacheSizeBytes,
  parseCacheType,
  parseDistanceRow,
  parseMemTotalKb,
  parseSysfsInt,
  stripSysfsText,
} from './sysfs-text.js';

describe('stripSysfsText', () => {
  it('removes surrounding whitespace and NULs but keeps inner ones', () => {
    expect(stripSysfsText('0-3\n\0')).toBe('0-3');
    expect(stripSysfsText('\0 1 \n')).toBe('1');
    expect(stripSysfsText('0-\u00003')).toBe('0-\u00003');
  });
});

describe('parseSysfsInt', () => {
  it('reads integers within bounds', () => {
    expect(parseSysfsInt('8442\n', -1, 2 ** 31 - 1)).toBe(8442);
    expect(parseSysfsInt('-1\n', -1, 10)).toBe(-1);
  });

  it.each(['', 'abc', '1.5', '12x', '-2', '11', '18446744073709551616'])('rejects %j', (text) => {
    expect(() => parseSysfsInt(text, -1, 10)).toThrow(SysfsFormatError);
  });
});

describe('parseMemTotalKb', () => {
  it('finds MemTotal in a node meminfo', () => {
    const meminfo = 'Node 5 MemTotal:        8388608 kB\nNode 5 MemFree:         8000000 kB\n';
    expect(parseMemTotalKb(meminfo)).toBe(8388608);
    expect(parseMemTotalKb('Node 4 MemTotal:              0 kB\n')).toBe(0);
  });

  it.each([
    ['no MemTotal line', 'Node 0 MemFree: 12 kB\n'],
    ['a negative size', 'Node 0 MemTotal: -5 kB\n'],
    ['a huge size', 'Node 0 MemTotal: 99999999999999999999 kB\n'],
    ['a size without unit', 'Node 0 MemTotal: 12\n'],
    ['an empty file', ''],
  ])('rejects %s', (_what, text) => {
    expect(() => parseMemTotalKb(text)).toThrow(SysfsFormatError);
  });
});

describe('parseDistanceRow', () => {
  it('reads a row of distances', () => {
    expect(parseDistanceRow('10 16 16 22\n')).toEqual([10, 16, 16, 22]);
  });

  it.each(['', '10 x', '10 -2', '10 99999999999', '10,20'])('rejects %j', (text) => {
    expect(() => parseDistanceRow(text)).toThrow(SysfsFormatError);
  });
});

describe('parseCacheSizeBytes and parseCacheType', () => {
  it('reads sizes with K/M/G suffixes', () => {
    expect(parseCacheSizeBytes('32K\n')).toBe(32 * 1024);
    expect(parseCacheSizeBytes('24576K')).toBe(24 * 1024 ** 2);
    expect(parseCacheSizeBytes('2M')).toBe(2 * 1024 ** 2);
  });

  it.each(['', 'K', '-5K', '32KB', '99999999999999999999K'])('rejects size %j', (text) => {
    expect(() => parseCacheSizeBytes(text)).toThrow(SysfsFormatError);
  });

  it('reads the three cache types and rejects others', () => {
    expect(parseCacheType('Data\n')).toBe('data');
    expect(parseCacheType('Instruction')).toBe('instruction');
    expect(parseCacheType('Unified\n\0')).toBe('unified');
    expect(() => parseCacheType('Trace')).toThrow(SysfsFormatError);
  });
});
