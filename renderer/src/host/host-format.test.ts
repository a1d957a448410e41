import { describe, expect, it } from 'vitest';
import {
  formatBytes,
  formatCount,
  formatCpuList,
  formatKb,
  formatPercent,
  nodeMemory,
  residency,
} from './host-format.js';

describe('formatBytes', () => {
  it('uses binary units with at most three significant digits', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1.00 KiB');
    expect(formatBytes(4096 * 3)).toBe('12.0 KiB');
    expect(formatBytes(512 * 1024)).toBe('512 KiB');
    expect(formatBytes(9005272 * 1024)).toBe('8.59 GiB');
  });

  it('never prints 1024 of a unit, and says unknown for nonsense', () => {
    expect(formatBytes(1024 * 1024 - 1)).toBe('1.00 MiB');
    expect(formatBytes(-1)).toBe('unknown');
    expect(formatBytes(Number.NaN)).toBe('unknown');
  });

  it('reads kernel kB as KiB', () => {
    expect(formatKb(51200)).toBe('50.0 MiB');
  });
});

describe('formatCount', () => {
  it('groups digits and keeps the exact value', () => {
    expect(formatCount(9005272)).toBe('9,005,272');
    expect(formatCount(0)).toBe('0');
  });
});

describe('formatPercent', () => {
  it('shows one decimal, and keeps a tiny non-zero share visible', () => {
    expect(formatPercent(0)).toBe('0 %');
    expect(formatPercent(1)).toBe('100 %');
    expect(formatPercent(0.375)).toBe('37.5 %');
    expect(formatPercent(0.0004)).toBe('< 0.1 %');
    expect(formatPercent(0.9996)).toBe('> 99.9 %');
  });

  it('clamps out-of-range values', () => {
    expect(formatPercent(1.5)).toBe('100 %');
    expect(formatPercent(-0.2)).toBe('0 %');
    expect(formatPercent(Number.NaN)).toBe('0 %');
  });
});

describe('formatCpuList', () => {
  it('collapses ranges as the kernel writes cpulists', () => {
    expect(formatCpuList([0, 1])).toBe('0-1');
    expect(formatCpuList([3, 0, 1, 2, 8, 10, 11, 10])).toBe('0-3,8,10-11');
    expect(formatCpuList([5])).toBe('5');
    expect(formatCpuList([])).toBe('none');
  });
});

describe('nodeMemory', () => {
  it('computes used memory and its share of the total', () => {
    expect(nodeMemory({ id: 0, total_kb: 1000, free_kb: 250 })).toEqual({ usedKb: 750, usedFraction: 0.75 });
  });

  it('does not divide by zero or go negative', () => {
    expect(nodeMemory({ id: 1, total_kb: 0, free_kb: 0 })).toEqual({ usedKb: 0, usedFraction: 0 });
    expect(nodeMemory({ id: 1, total_kb: 100, free_kb: 150 })).toEqual({ usedKb: 0, usedFraction: 0 });
  });
});

describe('residency', () => {
  it('gives the resident share and bytes of a measured file', () => {
    expect(residency({ name: 'audit/audit.sqlite', bytes: 8192, resident: 0.5 })).toEqual({
      measured: true,
      fraction: 0.5,
      residentBytes: 4096,
      label: '50.0 %',
    });
  });

  it('says why a file was not measured', () => {
    expect(residency({ name: 'a', bytes: 1, resident: null, unavailable: 'native addon not built' })).toEqual(
      { measured: false, reason: 'native addon not built' },
    );
    expect(residency({ name: 'a', bytes: 1, resident: null })).toEqual({
      measured: false,
      reason: 'not measured',
    });
  });
});
