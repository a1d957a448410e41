import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTopology } from '../../common/topology/index.js';
import { readNodeMemory } from './node-memory.js';
import { choosePlacement } from './placement.js';

// Real machines' sysfs trees (hwloc's test dumps) for what this 1-node VM cannot show.
let root: string;
const machine = (name: string): string => join(root, 'numa', name, 'sys');

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'metrics-'));
  execFileSync('tar', [
    'xzf',
    fileURLToPath(new URL('../../../../shared/fixtures/numa-hwloc.tar.gz', import.meta.url)),
    '-C',
    root,
    'numa/64amd64-4s2n4ca2co',
    'numa/128ia64-17n4s2c',
  ]);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('readNodeMemory', () => {
  it('reads every node of an 8-node Opteron, including the one with half the memory', () => {
    const mem = readNodeMemory(machine('64amd64-4s2n4ca2co'));
    expect(mem.map((m) => m.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(mem[5]).toEqual({ id: 5, total_kb: 8388608, free_kb: 8036468 });
    expect(mem[0]?.total_kb).toBe(16769836);
  });

  it('agrees with this host: node 0 as its meminfo says, or /proc/meminfo without NUMA', () => {
    const [node0] = readNodeMemory('/sys');
    const text = readFileSync('/sys/devices/system/node/node0/meminfo', 'utf8');
    expect(node0?.total_kb).toBe(Number(/MemTotal:\s+(\d+)/.exec(text)?.[1]));
    const none = readNodeMemory(join(root, 'no-such-sysfs'));
    expect(none).toHaveLength(1);
    expect(none[0]?.total_kb).toBe(
      Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]),
    );
  });
});

describe('choosePlacement', () => {
  it('picks the node with CPUs and the most free memory, with its CPUs and the reason', () => {
    const sys = machine('64amd64-4s2n4ca2co');
    const p = choosePlacement(readTopology(sys), readNodeMemory(sys), true);
    expect(p.enabled).toBe(true);
    expect(p.node).toBe(4); // 16229444 kB free, the most of the eight
    expect(p.cpus).toEqual(readTopology(sys).nodes.find((n) => n.id === 4)?.cpus);
    expect(p.reason).toMatch(/node 4: the most free memory .* of 8 nodes/);
  });

  it('never places on a memory-only node without CPUs, however much memory it has free', () => {
    const sys = machine('128ia64-17n4s2c');
    const memory = readNodeMemory(sys).map((m) => (m.id === 16 ? { ...m, free_kb: 1e12 } : m));
    const p = choosePlacement(readTopology(sys), memory, true);
    expect(p.node).not.toBe(16);
    expect(p.cpus.length).toBeGreaterThan(0);
  });

  it('has an off switch, and does nothing on a single node', () => {
    const sys = machine('64amd64-4s2n4ca2co');
    expect(choosePlacement(readTopology(sys), readNodeMemory(sys), false)).toMatchObject({
      enabled: false,
      reason: /off/,
    });
    const here = choosePlacement(readTopology('/sys'), readNodeMemory('/sys'), true);
    expect(here).toMatchObject({ enabled: false, node: 0, reason: /one NUMA node/ });
  });
});
