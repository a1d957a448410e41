import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { OpError, PlanRequest } from '../../common/contract/index.js';

/**
 * The largest file read as a document: what the core accepts (PlanRequest's document holds at most this
 * many characters, and a file of this many bytes has at most that many).
 */
export const MAX_DOCUMENT_BYTES = PlanRequest.shape.document.maxLength ?? 4 * 1024 * 1024;

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Reads a document the user named: a regular file (a device such as /dev/zero would never end, a FIFO
 * blocks until someone writes to it), at most MAX_DOCUMENT_BYTES (the read itself is bounded, so a file
 * that grows meanwhile changes nothing), UTF-8 with or without a BOM. Every refusal names the file;
 * invalid UTF-8 names its byte offset, line and column instead of becoming U+FFFD.
 */
export function readDocument(file: string, what = 'desired-state file'): string {
  const refuse = (why: string, at?: { line: number; column: number }): OpError =>
    new OpError('InvalidArgument', `cannot read the ${what}: ${why}`, { file, ...at });
  // stat before open: opening some devices has effects, and opening a FIFO waits for a writer
  checkKind(
    statOf(() => statSync(file), refuse),
    refuse,
  );
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO swapped in after the stat still does not block the open (fstat refuses it)
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    throw refuse(errnoText(e));
  }
  let bytes: Buffer;
  try {
    const st = statOf(() => fstatSync(fd), refuse);
    checkKind(st, refuse);
    if (st.size > MAX_DOCUMENT_BYTES) throw refuse(tooLarge(st.size));
    // one byte more than allowed: a file that grew since the fstat is seen to be too large
    const buffer = Buffer.alloc(Math.min(st.size, MAX_DOCUMENT_BYTES) + 1);
    let length = 0;
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, length);
      if (n === 0) break;
      length += n;
    }
    if (length > MAX_DOCUMENT_BYTES) throw refuse(tooLarge(length));
    bytes = buffer.subarray(0, length);
  } catch (e) {
    if (e instanceof OpError) throw e;
    throw refuse(errnoText(e));
  } finally {
    closeSync(fd);
  }
  if (bytes.subarray(0, 3).equals(BOM)) bytes = bytes.subarray(3);
  if (!isUtf8(bytes)) {
    const offset = firstInvalidUtf8(bytes);
    const before = bytes.subarray(0, offset).toString('utf8');
    const lineStart = before.lastIndexOf('\n') + 1;
    throw refuse(
      `not UTF-8: an invalid byte sequence (starting 0x${(bytes[offset] ?? 0).toString(16).padStart(2, '0')}) at byte offset ${offset}`,
      { line: before.split('\n').length, column: before.length - lineStart + 1 },
    );
  }
  return bytes.toString('utf8');
}

function statOf(stat: () => Stats, refuse: (why: string) => OpError): Stats {
  try {
    return stat();
  } catch (e) {
    throw refuse(errnoText(e));
  }
}

function checkKind(st: Stats, refuse: (why: string) => OpError): void {
  if (st.isFile()) return;
  const kind = st.isDirectory()
    ? 'a directory'
    : st.isFIFO()
      ? 'a FIFO'
      : st.isCharacterDevice() || st.isBlockDevice()
        ? 'a device'
        : st.isSocket()
          ? 'a socket'
          : 'not a file';
  throw refuse(`it is ${kind}, not a regular file`);
}

function tooLarge(bytes: number): string {
  return `it is ${bytes} bytes or more; a document may have at most ${MAX_DOCUMENT_BYTES} bytes`;
}

function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return e instanceof Error ? e.message : String(e);
}

/**
 * The offset of the first byte that is not part of a well-formed UTF-8 sequence (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or the length when there is none.
 */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i] as number;
    if (c < 0x80) {
      i += 1;
      continue;
    }
    // the allowed range of the second byte depends on the first (Table 3-7 of the Unicode standard)
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return i;
}
