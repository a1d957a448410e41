import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Stats } from '../../main/common/contract/index.js';
import { parseCpuList } from '../../main/common/topology/index.js';
import { dropFromPageCache, nativeAvailability } from '../../native/index.js';
import { CLI, ROOT, TestSandbox, writeDocument } from '../support/sandbox.js';

// Live metrics from the core, checked against independent readers: sysfs for memory, the kernel's
// page cache (dropped by this test through posix_fadvise) for residency. What is expected of the
// host comes from its sysfs, so it holds on one node or several (checked on hwloc's dumps below).
let sb: TestSandbox;

interface SysfsNode {
  id: number;
  total_kb: number;
  cpus: number[];
}

/** Each NUMA node's MemTotal and CPUs as sysfs says; a kernel without NUMA is one node 0 of /proc/meminfo. */
function sysfsNodes(sysfsRoot: string): SysfsNode[] {
  const memTotal = (text: string): number => Number(/MemTotal:\s+(\d+)/.exec(text)?.[1]);
  const base = join(sysfsRoot, 'devices/system/node');
  const nodes = (existsSync(base) ? readdirSync(base) : []).flatMap((entry) => {
    const m = /^node(\d+)$/.exec(entry);
    if (m === null) return [];
    const cpulist = join(base, entry, 'cpulist');
    return [
      {
        id: Number(m[1]),
        total_kb: memTotal(readFileSync(join(base, entry, 'meminfo'), 'utf8')),
        cpus: existsSync(cpulist) ? parseCpuList(readFileSync(cpulist, 'utf8')) : [],
      },
    ];
  });
  if (nodes.length > 0) return nodes.sort((a, b) => a.id - b.id);
  const online = readFileSync(join(sysfsRoot, 'devices/system/cpu/online'), 'utf8');
  return [{ id: 0, total_kb: memTotal(readFileSync('/proc/meminfo', 'utf8')), cpus: parseCpuList(online) }];
}

/** The node a CPU belongs to, by the nodes' cpulists. */
function nodeOfCpu(nodes: SysfsNode[], cpu: number | null): number | undefined {
  return nodes.find((n) => cpu !== null && n.cpus.includes(cpu))?.id;
}

beforeAll(async () => {
  process.env['OP_DBUS_WITNESS'] = 'off'; // the witness would read the log between the measurements
  sb = await TestSandbox.start();
  const file = writeDocument(
    join(sb.dir, '..', 'docs'),
    'd.json',
    JSON.stringify({ version: 1, plugins: { hostname: { location: 'Stats' } } }),
  );
  expect(sb.cli(['apply', file, '--yes']).code).toBe(0);
});
afterAll(async () => {
  await sb?.stop();
});

const stats = (): Stats => JSON.parse(sb.cli(['stats', '--json']).stdout) as Stats;

describe('op-dbus stats', () => {
  it('reports node memory as sysfs has it, and where the core runs', () => {
    const s = stats();
    const nodes = sysfsNodes('/sys');
    expect(s.nodes.map(({ id, total_kb }) => ({ id, total_kb }))).toEqual(
      nodes.map(({ id, total_kb }) => ({ id, total_kb })),
    );
    expect(s.core.pid).toBe(sb.corePid());
    expect(nativeAvailability().available).toBe(true);
    expect(s.core.affinity).toContain(s.core.cpu);
    expect(s.core.node).toBe(nodeOfCpu(nodes, s.core.cpu));
    if (nodes.filter((n) => n.cpus.length > 0).length <= 1) {
      expect(s.placement.reason).toMatch(/one NUMA node/);
    } else {
      // several nodes with CPUs: the core pinned itself to the one it chose
      expect(s.placement.enabled).toBe(true);
      expect(s.core.node).toBe(s.placement.node);
      expect(s.core.affinity).toEqual(s.placement.cpus);
    }
  });

  it("says where the audit log's work runs: a writer thread, verify workers, the native walk (all built here)", () => {
    expect(stats().audit).toEqual({ writer: 'thread', verify_workers: true, native_walk: true });
    expect(sb.cli(['stats']).stdout).toContain(
      'audit log: appends committed by a writer thread; verify on worker threads; native verify fast path',
    );
    expect(readFileSync(join(sb.dir, 'core.log'), 'utf8')).toMatch(
      /audit log: appends committed by a writer thread/,
    );
  });

  it('measures page-cache residency of the audit log: ~0 after the pages are dropped, high after a read', () => {
    const db = join(sb.dataDir, 'audit/audit.sqlite');
    dropFromPageCache(db);
    const cold = stats().files.find((f) => f.name === 'audit/audit.sqlite');
    expect(cold?.resident).toBeLessThan(0.05);
    readFileSync(db);
    const hot = stats().files.find((f) => f.name === 'audit/audit.sqlite');
    expect(hot?.resident).toBeGreaterThan(0.9);
  });

  it("answers Topology with the host's topology as op-dbus topology reads it", async () => {
    const client = await sb.client();
    try {
      const fromCore = await client.call('Topology', {});
      expect(fromCore).toEqual(JSON.parse(sb.cli(['topology', '--json']).stdout));
      const online = parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8'));
      const inNodes = fromCore.nodes.flatMap((n) => n.cpus).filter((cpu) => online.includes(cpu));
      expect(inNodes.sort((a, b) => a - b)).toEqual(online);
    } finally {
      client.close();
    }
  });

  it('pushes Metrics signals that a client receives without asking', async () => {
    await sb.restartCore({ OP_DBUS_METRICS_INTERVAL_MS: '200' });
    const watch = spawn(process.execPath, [CLI, 'stats', '--watch', '--json'], { env: sb.childEnv });
    let out = '';
    watch.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => setTimeout(r, 1500));
    watch.kill('SIGTERM');
    const lines = out
      .trim()
      .split('\n')
      .filter((l) => l !== '');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    const times = lines.map((l) => (JSON.parse(l) as Stats).time);
    expect(new Set(times).size).toBe(times.length);
  });
});

describe('what this test expects of a host, on machines with several nodes (hwloc dumps)', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'opdbus-stats-hosts-'));
    execFileSync('tar', [
      'xzf',
      join(ROOT, '../shared/fixtures/numa-hwloc.tar.gz'),
      '-C',
      root,
      'numa/64amd64-4s2n4ca2co/sys',
      'numa/offline-cpu0-node0/sys',
    ]);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("reads every node's memory and CPUs, and finds a CPU's node: 8 nodes, and a host whose only node is 1", () => {
    const opteron = sysfsNodes(join(root, 'numa/64amd64-4s2n4ca2co/sys'));
    expect(opteron.map((n) => n.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(opteron[5]).toMatchObject({ total_kb: 8388608, cpus: [40, 41, 42, 43, 44, 45, 46, 47] });
    expect(nodeOfCpu(opteron, 33)).toBe(4);
    const haswell = sysfsNodes(join(root, 'numa/offline-cpu0-node0/sys'));
    expect(haswell.map((n) => n.id)).toEqual([1]);
    expect(nodeOfCpu(haswell, 5)).toBe(1);
  });
});
