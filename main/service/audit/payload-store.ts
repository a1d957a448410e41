import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { compress, decompress } from 'zstd-napi';
import { OpError } from '../../common/contract/errors.js';

const HEX64 = /^[0-9a-f]{64}$/;
/** zstd level 3: ~260 MB/s compress, 1.2 GB/s decompress here (DESIGN.md section 10); payloads are written once. */
const ZSTD_LEVEL = 3;

/**
 * Audit payloads (plans, diffs, state snapshots) as files named by the SHA-256 of their canonical
 * JSON, zstd-compressed: <dir>/ab/cdef….zst. The same content is stored once. The index of what is
 * stored and what was pruned lives in the audit database, in the same transaction as the entry.
 */
export class PayloadStore {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Where the payload with this hash lives (or would). */
  pathOf(hash: string): string {
    if (!HEX64.test(hash))
      throw new OpError('InvalidArgument', `not a payload hash: ${JSON.stringify(hash)}`);
    return join(this.dir, hash.slice(0, 2), `${hash.slice(2)}.zst`);
  }

  /**
   * Writes the payload durably (file and directory fsynced) unless it is already there; returns the
   * compressed size. Called before the entry that names it commits, so no entry names a missing file.
   */
  put(hash: string, json: string): number {
    const file = this.pathOf(hash);
    if (existsSync(file)) return readFileSync(file).length;
    const sub = join(this.dir, hash.slice(0, 2));
    mkdirSync(sub, { recursive: true, mode: 0o700 });
    const data = compress(Buffer.from(json, 'utf8'), { compressionLevel: ZSTD_LEVEL });
    const tmp = `${file}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    const dirFd = openSync(sub, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    return data.length;
  }

  /** The payload's canonical JSON text, checked against its hash; undefined when there is no file. */
  get(hash: string): string | undefined {
    const file = this.pathOf(hash);
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new OpError('AuditCorrupt', `payload ${hash}: cannot read ${file}: ${String(e)}`, { file });
    }
    let text: string;
    try {
      text = decompress(data).toString('utf8');
    } catch (e) {
      throw new OpError('AuditCorrupt', `payload ${hash}: not valid zstd data: ${String(e)}`, { file });
    }
    if (createHash('sha256').update(text, 'utf8').digest('hex') !== hash) {
      throw new OpError('AuditCorrupt', `payload ${hash}: stored content does not match its hash`, { file });
    }
    return text;
  }

  /** Removes the payload's file (retention); a missing file is not an error. */
  remove(hash: string): void {
    rmSync(this.pathOf(hash), { force: true });
  }
}
