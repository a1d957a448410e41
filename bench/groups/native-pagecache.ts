import { randomFillSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dropFromPageCache, nativeAvailability, pageCacheResidency } from '../../native/index.js';
import type { BenchGroup, StartedGroup } from '../harness.js';
import { median } from '../statistics.js';

const FILE_BYTES = 64 * 1024 * 1024;
const CHUNK = 1024 * 1024;

/** Reads the whole file sequentially in 1 MiB reads; returns the bytes read. */
function readWhole(path: string, buffer: Buffer): number {
  const fd = openSync(path, 'r');
  try {
    let total = 0;
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) return total;
      total += n;
    }
  } finally {
    closeSync(fd);
  }
}

function elapsedMs(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Sequential read of a 64 MiB file whose pages are in the page cache vs dropped (posix_fadvise DONTNEED). */
export const nativePagecacheGroup: BenchGroup = {
  name: 'native-pagecache',
  description:
    'Sequential read (1 MiB reads) of a 64 MiB file on the data disk: pages resident (hot) vs dropped with ' +
    'fdatasync + posix_fadvise(DONTNEED) (cold). Each cold operation checks residency (mincore) reads below 1% ' +
    'first, reads, then drops the pages again; the hot one checks residency and reads.',
  baseline: 'read-hot',
  start: async (): Promise<StartedGroup> => {
    const availability = nativeAvailability();
    if (!availability.available) throw new Error(`native addon unavailable: ${availability.reason}`);
    const dir = mkdtempSync(join(tmpdir(), 'opdbus-bench-pagecache-'));
    const hot = join(dir, 'hot.bin');
    const cold = join(dir, 'cold.bin');
    const content = randomFillSync(Buffer.alloc(FILE_BYTES));
    writeFileSync(hot, content);
    writeFileSync(cold, content);
    const buffer = Buffer.alloc(CHUNK);
    const readMs = { hot: [] as number[], cold: [] as number[] };
    const dropMs: number[] = [];
    const coldResidency: number[] = [];
    const hotResidency: number[] = [];
    const cases = [
      {
        name: 'read-hot',
        setup: async () => {
          readWhole(hot, buffer);
        },
        run: async () => {
          hotResidency.push(pageCacheResidency(hot).fraction);
          const t0 = process.hrtime.bigint();
          if (readWhole(hot, buffer) !== FILE_BYTES) throw new Error('short read');
          readMs.hot.push(elapsedMs(t0));
        },
      },
      {
        name: 'read-cold',
        setup: async () => {
          dropFromPageCache(cold);
        },
        run: async () => {
          const before = pageCacheResidency(cold).fraction;
          coldResidency.push(before);
          if (before > 0.01)
            throw new Error(`the cold file is ${(before * 100).toFixed(1)}% resident before a cold read`);
          const t0 = process.hrtime.bigint();
          if (readWhole(cold, buffer) !== FILE_BYTES) throw new Error('short read');
          readMs.cold.push(elapsedMs(t0));
          const t1 = process.hrtime.bigint();
          dropFromPageCache(cold);
          dropMs.push(elapsedMs(t1));
        },
      },
    ];
    const pct = (xs: number[]): string =>
      xs.length === 0
        ? 'n/a'
        : `${(Math.min(...xs) * 100).toFixed(2)}–${(Math.max(...xs) * 100).toFixed(2)} %`;
    return {
      cases,
      notes: [
        `file on ${dir} (same filesystem as the data dir would be); in a VM the host may still cache the disk image, so "cold" means not in this kernel's page cache`,
      ],
      notesAfter: async () => {
        const hotMs = readMs.hot.length > 0 ? median(readMs.hot) : NaN;
        const coldMs = readMs.cold.length > 0 ? median(readMs.cold) : NaN;
        const mbs = (ms: number): string => (FILE_BYTES / 1e6 / (ms / 1e3)).toFixed(0);
        return [
          `residency before each cold read: ${pct(coldResidency)}; before each hot read: ${pct(hotResidency)}`,
          `read part alone (median): hot ${hotMs.toFixed(2)} ms (${mbs(hotMs)} MB/s), cold ${coldMs.toFixed(2)} ms (${mbs(coldMs)} MB/s), ` +
            `cold/hot ${(coldMs / hotMs).toFixed(1)}×; the drop after each cold read (fdatasync + DONTNEED + mincore) took ${median(dropMs.length > 0 ? dropMs : [NaN]).toFixed(2)} ms median and is in the table's read-cold time`,
        ];
      },
      stop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
};
