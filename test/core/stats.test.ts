import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { Stats } from '../../main/common/contract/index.js';
import { dropFromPageCache, nativeAvailability } from '../../native/index.js';
import { CLI, TestSandbox, writeDocument } from '../support/sandbox.js';

// Live metrics from the core, checked against independent readers: sysfs for memory, the kernel's
// page cache (dropped by this test through posix_fadvise) for residency.
let sb: TestSandbox;

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
    const meminfo = readFileSync('/sys/devices/system/node/node0/meminfo', 'utf8');
    expect(s.nodes[0]?.total_kb).toBe(Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1]));
    expect(s.core.pid).toBe(sb.corePid());
    expect(nativeAvailability().available).toBe(true);
    expect(s.core.affinity).toContain(s.core.cpu);
    expect(s.core.node).toBe(0);
    expect(s.placement.reason).toMatch(/one NUMA node/);
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
      expect(fromCore.nodes[0]?.cpus.length).toBe(os.availableParallelism());
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
