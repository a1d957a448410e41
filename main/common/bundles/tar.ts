// The bundle's container: POSIX ustar, written by `plugin pack` and read by the core. Reading it
// is the first thing the core does with an untrusted bundle, so the reader returns every entry's
// type exactly as the header says (a symlink, a device node, a hard link, an extension header) and
// the caller refuses what is not a plain file; nothing here touches the filesystem.

import { OpError } from '../contract/index.js';

const BLOCK = 512;

/** One member as its header describes it. */
export interface TarEntry {
  path: string;
  /** ustar typeflag, decoded. */
  type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'char-device' | 'block-device' | 'fifo' | 'other';
  /** The raw typeflag character (for `other`). */
  flag: string;
  /** For symlinks and hard links: what it points at. */
  linkTarget: string;
  /** The file's bytes (empty for anything but a file). */
  data: Buffer;
  /** Byte offset of its header in the archive (for error messages). */
  offset: number;
}

const TYPES: Record<string, TarEntry['type']> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '5': 'directory',
  '2': 'symlink',
  '1': 'hardlink',
  '3': 'char-device',
  '4': 'block-device',
  '6': 'fifo',
};

function refused(message: string, offset: number): OpError {
  return new OpError('BundleRefused', `not a bundle archive: ${message} (at byte ${offset})`, undefined, {
    check: 'format',
  });
}

function text(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? length : end).toString('utf8');
}

function octal(block: Buffer, start: number, length: number, offset: number, what: string): number {
  const field = block.subarray(start, start + length);
  if (((field[0] ?? 0) & 0x80) !== 0) throw refused(`${what} in base-256 form is not accepted`, offset);
  const s = text(block, start, length).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw refused(`${what} is not an octal number`, offset);
  return Number.parseInt(s, 8);
}

function checksumOf(block: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] as number);
  return sum;
}

/** Every entry of a ustar archive, in order; a damaged header or a truncated member is an error naming its offset. */
export function readTar(archive: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  while (offset + BLOCK <= archive.length) {
    const header = archive.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) return entries;
    const sum = octal(header, 148, 8, offset, 'header checksum');
    if (sum !== checksumOf(header)) throw refused('header checksum does not match', offset);
    const magic = text(header, 257, 6);
    if (magic !== 'ustar') throw refused(`header magic is "${magic}", not "ustar"`, offset);
    const name = text(header, 0, 100);
    const prefix = text(header, 345, 155);
    const size = octal(header, 124, 12, offset, 'size');
    const flag = String.fromCharCode(header[156] as number);
    const type = TYPES[flag] ?? 'other';
    const dataStart = offset + BLOCK;
    const hasData = type === 'file' || type === 'other';
    const dataEnd = dataStart + (hasData ? size : 0);
    if (dataEnd > archive.length) throw refused(`member ${name} is cut short`, offset);
    entries.push({
      path: prefix === '' ? name : `${prefix}/${name}`,
      type,
      flag,
      linkTarget: text(header, 157, 100),
      data: type === 'file' ? Buffer.from(archive.subarray(dataStart, dataEnd)) : Buffer.alloc(0),
      offset,
    });
    offset = dataStart + (hasData ? Math.ceil(size / BLOCK) * BLOCK : 0);
  }
  throw refused('the archive ends without its end-of-archive blocks', offset);
}

function put(block: Buffer, start: number, length: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw new OpError('InvalidArgument', `tar field too long: ${value}`);
  bytes.copy(block, start);
}

function putOctal(block: Buffer, start: number, length: number, value: number): void {
  put(block, start, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
}

/** One member to write: a regular file, or (for tests of the reader) any other type. */
export interface TarMember {
  path: string;
  data?: Buffer;
  type?: TarEntry['type'];
  linkTarget?: string;
}

const FLAGS: Partial<Record<TarEntry['type'], string>> = {
  file: '0',
  directory: '5',
  symlink: '2',
  hardlink: '1',
  'char-device': '3',
  'block-device': '4',
  fifo: '6',
};

/** A ustar archive of the members, in the order given; every header has uid/gid 0 and mtime 0, so the same files give the same bytes. */
export function writeTar(members: readonly TarMember[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const header = Buffer.alloc(BLOCK);
    const type = m.type ?? 'file';
    const data = type === 'file' ? (m.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
    let name = m.path;
    let prefix = '';
    if (Buffer.byteLength(name) > 100) {
      const cut = name.lastIndexOf('/', 155);
      if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) {
        throw new OpError(
          'InvalidArgument',
          `path too long for a bundle (at most 100 bytes per name): ${name}`,
        );
      }
      prefix = name.slice(0, cut);
      name = name.slice(cut + 1);
    }
    put(header, 0, 100, name);
    putOctal(header, 100, 8, type === 'directory' ? 0o755 : 0o644);
    putOctal(header, 108, 8, 0);
    putOctal(header, 116, 8, 0);
    putOctal(header, 124, 12, data.length);
    putOctal(header, 136, 12, 0);
    put(header, 156, 1, FLAGS[type] ?? '0');
    put(header, 157, 100, m.linkTarget ?? '');
    put(header, 257, 6, 'ustar\0');
    put(header, 263, 2, '00');
    put(header, 265, 32, 'root');
    put(header, 297, 32, 'root');
    put(header, 345, 155, prefix);
    put(header, 148, 8, `${checksumOf(header).toString(8).padStart(6, '0')}\0 `);
    parts.push(header, data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}
