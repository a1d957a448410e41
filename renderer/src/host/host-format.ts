import type { Stats } from '../../../main/common/contract/index.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** A byte count in binary units, three significant digits at most: "512 B", "4.0 KiB", "8.59 GiB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return 'unknown';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${value} B`;
  // 1023.96 KiB would print as "1024 KiB": move up a unit instead
  if (Math.round(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${UNITS[unit] ?? ''}`;
}

/** A size the kernel reports in kB (meminfo, VmRSS: units of 1024 bytes). */
export function formatKb(kb: number): string {
  return formatBytes(kb * 1024);
}

/** An exact count with digit grouping, as the kernel reported it: "9,005,272". */
export function formatCount(n: number): string {
  return new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 }).format(n);
}

/** A fraction 0..1 as a percentage; a tiny non-zero share is not rounded to 0. */
export function formatPercent(fraction: number): string {
  const f = clamp01(fraction);
  if (f === 0) return '0 %';
  if (f === 1) return '100 %';
  if (f < 0.001) return '< 0.1 %';
  if (f > 0.999) return '> 99.9 %';
  return `${(f * 100).toFixed(1)} %`;
}

/** CPU numbers as the kernel writes cpulists: sorted, ranges collapsed ("0-3,8,10-11"). */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  if (sorted.length === 0) return 'none';
  const parts: string[] = [];
  let start = sorted[0] as number;
  let end = start;
  for (const cpu of sorted.slice(1)) {
    if (cpu === end + 1) {
      end = cpu;
      continue;
    }
    parts.push(start === end ? `${start}` : `${start}-${end}`);
    start = end = cpu;
  }
  parts.push(start === end ? `${start}` : `${start}-${end}`);
  return parts.join(',');
}

/** One node's memory for its bar: used = total - free, fractions clamped to 0..1. */
export function nodeMemory(node: Stats['nodes'][number]): {
  usedKb: number;
  usedFraction: number;
} {
  const used = Math.max(0, node.total_kb - node.free_kb);
  return { usedKb: used, usedFraction: node.total_kb > 0 ? clamp01(used / node.total_kb) : 0 };
}

/** A file's page-cache residency for its bar, or why it was not measured. */
export function residency(
  file: Stats['files'][number],
):
  | { measured: true; fraction: number; residentBytes: number; label: string }
  | { measured: false; reason: string } {
  if (file.resident === null) {
    return { measured: false, reason: file.unavailable ?? 'not measured' };
  }
  const fraction = clamp01(file.resident);
  return {
    measured: true,
    fraction,
    residentBytes: Math.round(fraction * file.bytes),
    label: formatPercent(fraction),
  };
}

function clamp01(f: number): number {
  if (!Number.isFinite(f) || f < 0) return 0;
  return f > 1 ? 1 : f;
}
