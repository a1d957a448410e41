import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchGroup, StartedGroup } from '../harness.js';
import { mapFile, nativeAvailability } from '../../native/index.js';
import { seededRandom } from '../statistics.js';
import { syntheticEmbeddings } from './storage-zstd.js';

const COUNT = 10_000;
const DIMENSIONS = 384;
const VECTOR_BYTES = DIMENSIONS * 4;
const LOOKUPS = 1_000;

function elapsedMs(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** 10k vectors stored one file each vs one file read at offsets vs the whole file in memory. */
export const storageVectorLayoutGroup: BenchGroup = {
  name: 'storage-vector-layout',
  description:
    `${LOOKUPS} random lookups among ${COUNT} × ${DIMENSIONS} float32 vectors (page cache warm): one file per vector ` +
    '(open + read + close each), one file read at offsets (pread on a descriptor kept open), the file mapped with ' +
    'mmap (native addon) and viewed at offsets, and the whole file read into memory once and viewed at offsets.',
  baseline: 'pread-one-file',
  start: async (): Promise<StartedGroup> => {
    const dir = mkdtempSync(join(tmpdir(), 'opdbus-bench-vectors-'));
    const perVector = join(dir, 'per-vector');
    const single = join(dir, 'vectors.f32');
    let fd = -1;
    try {
      const vectors = syntheticEmbeddings(COUNT, 17);
      const bytes = Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength);
      mkdirSync(perVector);
      let t0 = process.hrtime.bigint();
      for (let i = 0; i < COUNT; i++) {
        writeFileSync(join(perVector, `${i}.f32`), bytes.subarray(i * VECTOR_BYTES, (i + 1) * VECTOR_BYTES));
      }
      const writeMany = elapsedMs(t0);
      t0 = process.hrtime.bigint();
      const out = openSync(single, 'w');
      try {
        for (let i = 0; i < COUNT; i++) writeSync(out, bytes, i * VECTOR_BYTES, VECTOR_BYTES);
      } finally {
        closeSync(out);
      }
      const writeOne = elapsedMs(t0);
      t0 = process.hrtime.bigint();
      const memory = readFileSync(single);
      const loadAll = elapsedMs(t0);
      const view = new Float32Array(memory.buffer, memory.byteOffset, memory.byteLength / 4);
      // the one file mapped with mmap (our addon; Node has none): reads fault pages from the page cache
      const native = nativeAvailability();
      const mapped = native.available ? new Float32Array(mapFile(single)) : undefined;
      fd = openSync(single, 'r');
      const openFd = fd;
      const random = seededRandom(23);
      const buffer = Buffer.alloc(VECTOR_BYTES);
      let sink = 0;
      const ids = (): number[] => Array.from({ length: LOOKUPS }, () => Math.floor(random() * COUNT));
      return {
        cases: [
          {
            name: 'pread-one-file',
            run: async () => {
              for (const id of ids()) {
                readSync(openFd, buffer, 0, VECTOR_BYTES, id * VECTOR_BYTES);
                sink += buffer.readFloatLE(0);
              }
            },
          },
          {
            name: 'file-per-vector',
            run: async () => {
              for (const id of ids()) sink += readFileSync(join(perVector, `${id}.f32`)).readFloatLE(0);
            },
          },
          ...(mapped !== undefined
            ? [
                {
                  name: 'mmap-view',
                  run: async () => {
                    for (const id of ids()) {
                      const v = mapped.subarray(id * DIMENSIONS, (id + 1) * DIMENSIONS);
                      sink += v[0] as number;
                    }
                  },
                },
              ]
            : []),
          {
            name: 'in-memory-view',
            run: async () => {
              for (const id of ids()) {
                const v = view.subarray(id * DIMENSIONS, (id + 1) * DIMENSIONS);
                sink += v[0] as number;
              }
            },
          },
        ],
        notes: [
          `one-off writes of all ${COUNT} vectors: ${writeMany.toFixed(0)} ms as ${COUNT} files, ${writeOne.toFixed(0)} ms into one file; ` +
            `loading the one file into memory: ${loadAll.toFixed(1)} ms (${(bytes.length / 1e6).toFixed(1)} MB)`,
          `files on ${dir}; a file per vector also costs an inode and a 4 KiB block each for ${VECTOR_BYTES} B of data`,
          native.available
            ? 'mmap-view: the file mapped read-only by the native addon'
            : `mmap-view not run: ${native.reason}`,
        ],
        notesAfter: async () => [
          `checksum of the values read (keeps the reads live): ${Number.isFinite(sink) ? 'finite' : 'NaN'}`,
        ],
        stop: async () => {
          closeSync(openFd);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (e) {
      if (fd >= 0) closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  },
};
