import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  INODE_FLAGS,
  NativeError,
  adviseFile,
  dropFromPageCache,
  inodeFlags,
  mapFile,
  nativeAvailability,
  pageCacheResidency,
  setInodeFlags,
} from './index.js';

const availability = nativeAvailability();
const reason = availability.available ? '' : availability.reason;

/** Polls until the file's residency reaches `atLeast` (WILLNEED starts readahead asynchronously). */
async function residencyReaching(path: string, atLeast: number, timeoutMs = 5_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let fraction = pageCacheResidency(path).fraction;
  while (fraction < atLeast && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    fraction = pageCacheResidency(path).fraction;
  }
  return fraction;
}

function errorOf(f: () => unknown): NativeError {
  try {
    f();
  } catch (e) {
    if (e instanceof NativeError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

describe.skipIf(!availability.available)(`mincore and posix_fadvise (addon: ${reason || 'loaded'})`, () => {
  let dir = '';
  let file = '';
  const size = 32 * 1024 * 1024;

  beforeAll(() => {
    // /tmp here is on a disk filesystem (ext4): tmpfs pages could not be dropped
    dir = mkdtempSync(join(tmpdir(), 'opdbus-pagecache-'));
    file = join(dir, 'data.bin');
    const chunk = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 131) & 0xff;
    writeFileSync(file, Buffer.concat(Array.from({ length: size / chunk.length }, () => chunk)));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a file just written is resident; after fdatasync + DONTNEED it reads ~0%; WILLNEED and a read bring it back', async () => {
    const hot = pageCacheResidency(file);
    expect(hot.totalPages).toBe(size / hot.pageSize);
    expect(hot.fileSize).toBe(size);
    expect(hot.fraction).toBeGreaterThan(0.9);

    const cold = dropFromPageCache(file);
    expect(cold.fraction).toBeLessThan(0.01);

    adviseFile(file, 'willneed');
    expect(await residencyReaching(file, 0.9)).toBeGreaterThan(0.9);

    expect(dropFromPageCache(file).fraction).toBeLessThan(0.01);
    readFileSync(file);
    expect(pageCacheResidency(file).fraction).toBeGreaterThan(0.9);
  });

  it('works on a range: dropping the first half leaves the second resident', () => {
    readFileSync(file);
    adviseFile(file, 'dontneed', { offset: 0, length: size / 2 });
    expect(pageCacheResidency(file, { offset: 0, length: size / 2 }).fraction).toBeLessThan(0.01);
    expect(pageCacheResidency(file, { offset: size / 2, length: size / 2 }).fraction).toBeGreaterThan(0.9);
  });

  it('accepts sequential and random advice', () => {
    expect(() => adviseFile(file, 'sequential')).not.toThrow();
    expect(() => adviseFile(file, 'random')).not.toThrow();
  });

  it('an empty file has no pages', () => {
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    expect(pageCacheResidency(empty)).toMatchObject({ totalPages: 0, residentPages: 0, fraction: 0 });
  });

  it('errors carry the errno name, the system call and the path', () => {
    const missing = join(dir, 'missing');
    expect(errorOf(() => pageCacheResidency(missing))).toMatchObject({
      code: 'ENOENT',
      errno: 2,
      syscall: 'open',
      path: missing,
      message: `mincore: open ${missing}: No such file or directory (ENOENT)`,
    });
    expect(errorOf(() => pageCacheResidency(dir))).toMatchObject({ code: 'EINVAL', path: dir });
    expect(errorOf(() => adviseFile(missing, 'dontneed'))).toMatchObject({ code: 'ENOENT', syscall: 'open' });
    expect(() => adviseFile(file, 'bogus' as never)).toThrow(/advice must be one of/);
    expect(() => pageCacheResidency(file, { offset: -1 })).toThrow(/offset must be a non-negative integer/);
  });

  it('reads and sets inode flags (no-CoW is refused by ext4, with the errno)', () => {
    const sub = join(dir, 'flags');
    mkdirSync(sub);
    expect(typeof inodeFlags(sub)).toBe('number');
    const e = errorOf(() => setInodeFlags(sub, { set: INODE_FLAGS.noCow }));
    // ext4 has no FS_NOCOW_FL: the kernel either refuses it or silently drops it
    expect(['EOPNOTSUPP', 'EINVAL']).toContain(e.code);
  });
});

describe('mapFile', () => {
  it('maps a file read-only: the bytes are the file, and reading them faults its pages into the page cache', () => {
    const dir = mkdtempSync(join(tmpdir(), 'opdbus-mmap-'));
    try {
      const file = join(dir, 'vectors.f32');
      const data = Buffer.alloc(8 * 1024 * 1024);
      for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
      writeFileSync(file, data);
      dropFromPageCache(file);
      const mapped = mapFile(file);
      expect(mapped.byteLength).toBe(data.length);
      expect(pageCacheResidency(file).fraction).toBeLessThan(0.05);
      const view = new Uint32Array(mapped);
      let sum = 0;
      for (let i = 0; i < view.length; i += 1024) sum += view[i] === i * 4 ? 1 : 0;
      expect(sum).toBe(view.length / 1024);
      expect(pageCacheResidency(file).fraction).toBeGreaterThan(0.9);
      expect(() => mapFile(join(dir, 'missing'))).toThrow(/ENOENT|no such file/);
      writeFileSync(join(dir, 'empty'), '');
      expect(mapFile(join(dir, 'empty')).byteLength).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
