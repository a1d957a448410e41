import {
  currentCpu,
  formatCpuListText,
  getAffinity,
  nativeAvailability,
  onlineCpus,
  setAffinity,
} from '../../native/index.js';
import type { BenchCase, BenchGroup, StartedGroup } from '../harness.js';
import { seededRandom } from '../statistics.js';

/** Entries of the pointer-chasing ring: 64 MiB of Int32, far beyond any L2/L3 here. */
const RING_ENTRIES = 16 * 1024 * 1024;
const CHASE_STEPS = 400_000;
const CPU_ITERATIONS = 8_000_000;

/** Keeps the kernels' results alive so the JIT cannot drop the work. */
let sink = 0;

/** Floating-point work that stays in registers: no memory traffic. */
function cpuKernel(): number {
  let x = 1.0001;
  let acc = 0;
  for (let i = 0; i < CPU_ITERATIONS; i++) {
    x = x * 1.0000001 + 0.0000001;
    acc += x * 0.5;
  }
  return acc;
}

/** A single random cycle (Sattolo), so every step of the chase is a dependent cache miss. */
function makeRing(seed: number): Int32Array {
  const ring = new Int32Array(RING_ENTRIES);
  for (let i = 0; i < RING_ENTRIES; i++) ring[i] = i;
  const random = seededRandom(seed);
  for (let i = RING_ENTRIES - 1; i > 0; i--) {
    const j = Math.floor(random() * i);
    const t = ring[i] as number;
    ring[i] = ring[j] as number;
    ring[j] = t;
  }
  return ring;
}

function memoryKernel(ring: Int32Array, start: number): number {
  let p = start;
  for (let i = 0; i < CHASE_STEPS; i++) p = ring[p] as number;
  return p;
}

/** CPU pinning on vs off, for a CPU-bound and a memory-bound kernel. */
export const nativePinningGroup: BenchGroup = {
  name: 'native-pinning',
  description:
    `Every thread of the process pinned to one CPU (sched_setaffinity through the addon) vs allowed on all online CPUs: ` +
    `a register-only float loop (${CPU_ITERATIONS / 1e6} M iterations) and a pointer chase over a 64 MiB ring ` +
    `(${CHASE_STEPS / 1000} k dependent loads). Each operation first sets the mask, pinned or not, so both pay that call.`,
  baseline: 'cpu-unpinned',
  start: async (): Promise<StartedGroup> => {
    const availability = nativeAvailability();
    if (!availability.available) throw new Error(`native addon unavailable: ${availability.reason}`);
    const original = getAffinity();
    const online = onlineCpus();
    const target = online[online.length - 1] as number;
    const ring = makeRing(7);
    let cursor = 0;
    let threads = 0;
    const observedCpus = new Set<number>();
    const pinned = (): void => {
      threads = setAffinity([target]).threads.length;
    };
    const unpinned = (): void => {
      setAffinity(online);
    };
    const cases: BenchCase[] = [
      {
        name: 'cpu-unpinned',
        run: async () => {
          unpinned();
          sink += cpuKernel();
        },
      },
      {
        name: 'cpu-pinned',
        run: async () => {
          pinned();
          sink += cpuKernel();
          observedCpus.add(currentCpu().cpu);
        },
      },
      {
        name: 'memory-unpinned',
        run: async () => {
          unpinned();
          cursor = memoryKernel(ring, cursor);
        },
      },
      {
        name: 'memory-pinned',
        run: async () => {
          pinned();
          cursor = memoryKernel(ring, cursor);
          observedCpus.add(currentCpu().cpu);
        },
      },
    ];
    return {
      cases,
      notes: [
        `online CPUs ${formatCpuListText(online)}; pinned cases use CPU ${target}; the process's mask before: ${formatCpuListText(original)}`,
      ],
      notesAfter: async () => [
        `pinned runs set the mask on ${threads} threads (main, libuv pool, V8 helpers); getcpu after a pinned run saw CPU ${formatCpuListText([...observedCpus])}`,
        `kernel results (kept so the JIT cannot drop the work): ${Number.isFinite(sink) ? 'finite' : 'not finite'}, ring cursor ${cursor}`,
      ],
      stop: async () => {
        setAffinity(original);
      },
    };
  },
};
