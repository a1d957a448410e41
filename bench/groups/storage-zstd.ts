import { randomFillSync } from 'node:crypto';
import { compress, decompress } from 'zstd-napi';
import type { BenchCase, BenchGroup, StartedGroup } from '../harness.js';
import { median, seededRandom, type Random } from '../statistics.js';

const DIMENSIONS = 384;
const VECTORS = 256;
const LEVELS = [1, 3, 9, 19] as const;

/** A standard normal sample (Box-Muller). */
function gaussian(random: Random): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/**
 * Unit-length float32 vectors with the structure of sentence embeddings: 16 topic centroids with
 * a shared bias direction (real embedding spaces are anisotropic), each vector a centroid plus
 * noise, normalised. No pretrained model can be had here (DESIGN.md section 6), so this is a model
 * of one; its bytes are what matters to zstd: float32 mantissas of values in (-1, 1).
 */
export function syntheticEmbeddings(count: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  const bias = Array.from({ length: DIMENSIONS }, () => gaussian(random) * 0.5);
  const centroids = Array.from({ length: 16 }, () =>
    Array.from({ length: DIMENSIONS }, (_, d) => gaussian(random) + (bias[d] as number)),
  );
  const out = new Float32Array(count * DIMENSIONS);
  for (let v = 0; v < count; v++) {
    const c = centroids[Math.floor(random() * centroids.length)] as number[];
    const row = c.map((x) => x + gaussian(random) * 0.6);
    const norm = Math.sqrt(row.reduce((s, x) => s + x * x, 0));
    row.forEach((x, d) => (out[v * DIMENSIONS + d] = x / norm));
  }
  return out;
}

/** A plugin-state snapshot as JSON: 200 containers with network, resources and environment. */
export function syntheticStateJson(seed: number): Buffer {
  const random = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const containers = Array.from({ length: 200 }, (_, i) => ({
    name: `ct-${String(i).padStart(4, '0')}`,
    template: pick(['debian-12', 'alpine-3.20', 'ubuntu-24.04']),
    state: pick(['running', 'stopped']),
    resources: { cpus: pick([1, 2, 4]), memoryMiB: pick([256, 512, 1024, 2048]), diskGiB: pick([4, 8, 16]) },
    network: {
      bridge: pick(['vmbr0', 'ovsbr0']),
      ipv4: `10.${Math.floor(random() * 255)}.${Math.floor(random() * 255)}.${Math.floor(random() * 254) + 1}/24`,
      mac: Array.from({ length: 6 }, () =>
        Math.floor(random() * 256)
          .toString(16)
          .padStart(2, '0'),
      ).join(':'),
      vlan: pick([null, 10, 20, 30]),
    },
    environment: Object.fromEntries(
      Array.from({ length: 5 }, (_, k) => [`VAR_${k}`, Math.floor(random() * 1e9).toString(36)]),
    ),
    updatedAt: new Date(1_700_000_000_000 + Math.floor(random() * 1e10)).toISOString(),
  }));
  return Buffer.from(JSON.stringify({ version: 3, plugin: 'lxc', containers }, null, 2));
}

/** zstd levels 1/3/9/19 on embeddings, random bytes and JSON state: compression ratio and speed. */
export const storageZstdGroup: BenchGroup = {
  name: 'storage-zstd',
  description:
    `zstd (zstd-napi) compress at levels ${LEVELS.join('/')} of ${VECTORS} × ${DIMENSIONS} float32 vectors ` +
    `(${(VECTORS * DIMENSIONS * 4) / 1024} KiB): normalised synthetic embeddings and random bytes of the same size; ` +
    `and a JSON plugin-state snapshot; plus level-3 decompression of each. Ratio and MB/s in the notes.`,
  baseline: 'embeddings-l1',
  start: async (): Promise<StartedGroup> => {
    const embeddings = syntheticEmbeddings(VECTORS, 11);
    const data: Record<string, Buffer> = {
      embeddings: Buffer.from(embeddings.buffer, embeddings.byteOffset, embeddings.byteLength),
      'random-bytes': randomFillSync(Buffer.alloc(VECTORS * DIMENSIONS * 4)),
      'state-json': syntheticStateJson(13),
    };
    const ratios: string[] = [];
    const facts: Record<string, number> = {};
    const innerMs = new Map<string, number[]>();
    const cases: BenchCase[] = [];
    for (const [name, input] of Object.entries(data)) {
      for (const level of LEVELS) {
        const caseName = `${name}-l${level}`;
        const compressed = compress(input, { compressionLevel: level });
        ratios.push(`${caseName} ${(input.length / compressed.length).toFixed(3)}`);
        facts[`ratio:${caseName}`] = input.length / compressed.length;
        innerMs.set(caseName, []);
        cases.push({
          name: caseName,
          run: async () => {
            const t0 = process.hrtime.bigint();
            compress(input, { compressionLevel: level });
            innerMs.get(caseName)?.push(Number(process.hrtime.bigint() - t0) / 1e6);
          },
        });
      }
      const packed = compress(input, { compressionLevel: 3 });
      const caseName = `${name}-decompress`;
      innerMs.set(caseName, []);
      cases.push({
        name: caseName,
        run: async () => {
          const t0 = process.hrtime.bigint();
          const out = decompress(packed);
          innerMs.get(caseName)?.push(Number(process.hrtime.bigint() - t0) / 1e6);
          if (out.length !== input.length) throw new Error('decompressed size differs');
        },
      });
    }
    const sizes = Object.entries(data).map(([k, v]) => `${k} ${v.length} B`);
    return {
      cases,
      notes: [`inputs: ${sizes.join(', ')}`, `ratio (original / compressed): ${ratios.join(', ')}`],
      facts: () => facts,
      notesAfter: async () => [
        `MB/s of the input (median): ${[...innerMs.entries()]
          .map(([name, ms]) => {
            const input = data[name.replace(/-(l\d+|decompress)$/, '')] as Buffer;
            return `${name} ${(input.length / 1e6 / (median(ms) / 1e3)).toFixed(0)}`;
          })
          .join(', ')}`,
      ],
      stop: async () => undefined,
    };
  },
};
