// Parsers for the text of single sysfs attribute files. Each throws SysfsFormatError on text that
// does not have the shape the kernel prints, so the reader can turn it into a warning naming the file.

/** Text of a sysfs attribute whose content does not have the shape the kernel prints. */
export class SysfsFormatError extends Error {
  override name = 'SysfsFormatError';
}

/** A short, quoted, escaped excerpt of file text for error messages (NULs and newlines made visible). */
export function previewText(text: string): string {
  const excerpt = text.length > 40 ? `${text.slice(0, 40)}...` : text;
  return JSON.stringify(excerpt);
}

/** Attribute text without surrounding whitespace and the trailing NUL bytes older kernels and gatherers leave. */
export function stripSysfsText(text: string): string {
  // Only the ends are cleaned: a NUL inside a value means the file is damaged, and must be reported.
  return text.replace(/^[\s\0]+/u, '').replace(/[\s\0]+$/u, '');
}

/** Parse a decimal integer attribute (physical_package_id, core_id, level, online...) within [min, max]. */
export function parseSysfsInt(text: string, min: number, max: number): number {
  const body = stripSysfsText(text);
  if (!/^-?\d+$/u.test(body)) throw new SysfsFormatError(`not an integer: ${previewText(text)}`);
  const value = Number(body);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new SysfsFormatError(`${body} is outside ${min}..${max}`);
  }
  return value;
}

/** MemTotal in kB from a node's meminfo ("Node 0 MemTotal:   16769836 kB"). */
export function parseMemTotalKb(text: string): number {
  for (const line of text.split('\n')) {
    const match = /^(?:Node\s+\d+\s+)?MemTotal:\s*(\S+)\s*kB$/u.exec(stripSysfsText(line));
    if (match === null) continue;
    const value = match[1] ?? '';
    const kb = /^\d+$/u.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(kb))
      throw new SysfsFormatError(`MemTotal is not a size in kB: ${previewText(value)}`);
    return kb;
  }
  throw new SysfsFormatError(`no "MemTotal: N kB" line in ${previewText(text)}`);
}

// The kernel prints node distances with %d; SLIT values are bytes, but some architectures compute
// larger ones, so only what cannot be a distance (negative, beyond int) is rejected.
const MAX_NODE_DISTANCE = 2 ** 31 - 1;

/** A node's row of distances ("10 16 16 22"), one per online node in ascending node-id order. */
export function parseDistanceRow(text: string): number[] {
  const body = stripSysfsText(text);
  if (body === '') throw new SysfsFormatError('empty distance row');
  return body.split(/[ \t]+/u).map((field) => {
    if (!/^\d+$/u.test(field)) throw new SysfsFormatError(`not a distance: ${previewText(field)}`);
    const distance = Number(field);
    if (distance > MAX_NODE_DISTANCE) throw new SysfsFormatError(`distance ${field} is out of range`);
    return distance;
  });
}

const SIZE_SUFFIX_BYTES: Readonly<Record<string, number>> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** A cache's size attribute ("32K", "24576K") in bytes. */
export function parseCacheSizeBytes(text: string): number {
  const match = /^(\d+)([KMG]?)$/u.exec(stripSysfsText(text));
  const multiplier = SIZE_SUFFIX_BYTES[match?.[2] ?? ''];
  if (match === null || multiplier === undefined) {
    throw new SysfsFormatError(`not a cache size: ${previewText(text)}`);
  }
  const bytes = Number(match[1]) * multiplier;
  if (!Number.isSafeInteger(bytes)) throw new SysfsFormatError(`cache size ${match[0]} is out of range`);
  return bytes;
}

/** The kind of a CPU cache, as sysfs cache/indexN/type names it (lower-cased). */
export type CacheType = 'data' | 'instruction' | 'unified';

/** A cache's type attribute ("Data", "Instruction", "Unified"). */
export function parseCacheType(text: string): CacheType {
  const body = stripSysfsText(text);
  switch (body) {
    case 'Data':
      return 'data';
    case 'Instruction':
      return 'instruction';
    case 'Unified':
      return 'unified';
    default:
      throw new SysfsFormatError(`unknown cache type ${previewText(text)}`);
  }
}
