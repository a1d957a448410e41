// The two ways sysfs prints a set of CPU (or node) ids: the list format "0-3,8-11" (cpulist, *_list,
// node/online...) and the hex mask format "ff,00000000" (cpumap, shared_cpu_map, thread_siblings...).

import { SysfsFormatError, previewText, stripSysfsText } from './sysfs-text.js';

/**
 * Largest CPU or node id accepted. Linux caps NR_CPUS at 8192 on every architecture today; the margin
 * keeps real machines in while a garbled "0-4294967295" cannot make the reader allocate billions of ids.
 */
export const MAX_CPU_ID = 65_535;

const MASK_WORD_BITS = 32;

/** Sorted, de-duplicated ids from ranges that may overlap or come in any order. */
function expandRanges(ranges: Array<[number, number]>): number[] {
  ranges.sort((a, b) => a[0] - b[0]);
  const ids: number[] = [];
  let next = 0; // first id not yet emitted, so overlapping ranges add each id once
  for (const [low, high] of ranges) {
    for (let id = Math.max(low, next); id <= high; id++) ids.push(id);
    next = Math.max(next, high + 1);
  }
  return ids;
}

/** Parse the kernel's list format ("0-3,8-11", "" for none) into sorted unique ids. */
export function parseCpuList(text: string): number[] {
  const body = stripSysfsText(text);
  if (body === '') return [];
  const ranges: Array<[number, number]> = [];
  for (const part of body.split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/u.exec(part);
    if (match === null) throw new SysfsFormatError(`not a cpu list: ${previewText(text)}`);
    const low = Number(match[1]);
    const high = match[2] === undefined ? low : Number(match[2]);
    if (high > MAX_CPU_ID)
      throw new SysfsFormatError(`id ${high} in ${previewText(part)} exceeds ${MAX_CPU_ID}`);
    if (low > high) throw new SysfsFormatError(`reversed range ${previewText(part)}`);
    ranges.push([low, high]);
  }
  return expandRanges(ranges);
}

/** Parse the kernel's hex mask format (32-bit words, most significant first: "ff,00000000") into sorted ids. */
export function parseCpuMap(text: string): number[] {
  const body = stripSysfsText(text);
  if (body === '') throw new SysfsFormatError('empty cpu mask');
  const words = body.split(',');
  if (words.length * MASK_WORD_BITS > MAX_CPU_ID + 1) {
    throw new SysfsFormatError(`cpu mask of ${words.length} words exceeds ${MAX_CPU_ID + 1} bits`);
  }
  const ids: number[] = [];
  // The least significant word comes last and holds ids 0-31.
  words.reverse().forEach((word, wordIndex) => {
    if (!/^[0-9a-fA-F]{1,8}$/u.test(word)) throw new SysfsFormatError(`not a cpu mask: ${previewText(text)}`);
    const bits = Number.parseInt(word, 16);
    for (let bit = 0; bit < MASK_WORD_BITS; bit++) {
      if (Math.floor(bits / 2 ** bit) % 2 === 1) ids.push(wordIndex * MASK_WORD_BITS + bit);
    }
  });
  return ids;
}

/** Format ids in the kernel's list format ("0-3,8-11"; "" for none). */
export function formatCpuList(ids: readonly number[]): string {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let start = 0; start < sorted.length;) {
    let end = start;
    while (end + 1 < sorted.length && sorted[end + 1] === (sorted[end] ?? 0) + 1) end++;
    parts.push(end === start ? `${sorted[start]}` : `${sorted[start]}-${sorted[end]}`);
    start = end + 1;
  }
  return parts.join(',');
}
