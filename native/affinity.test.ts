import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  NativeError,
  checkAffinityRequest,
  currentCpu,
  formatCpuListText,
  getAffinity,
  loadAddon,
  nativeAvailability,
  onlineCpus,
  parseCpuListText,
  setAffinity,
} from './index.js';

const availability = nativeAvailability();
const reason = availability.available ? '' : availability.reason;

/** Cpus_allowed_list of every thread, read from /proc (independent of the addon). */
function allowedByThread(): Map<number, string> {
  const out = new Map<number, string>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const status = readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
      const list = /^Cpus_allowed_list:\s*(.*)$/m.exec(status)?.[1];
      if (list !== undefined) out.set(Number(tid), list.trim());
    } catch {
      // the thread exited between readdir and read
    }
  }
  return out;
}

/** A worker that stays alive until terminated, and reports its thread id (tid) once running. */
async function idleWorker(): Promise<{ worker: Worker; tid: number }> {
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
     parentPort.postMessage(tid);
     setInterval(() => {}, 1000);`,
    { eval: true },
  );
  const tid = await new Promise<number>((resolve, reject) => {
    worker.once('message', (m: number) => resolve(m));
    worker.once('error', reject);
  });
  return { worker, tid };
}

describe('without the addon', () => {
  it('reports "unavailable" with the reason instead of guessing', () => {
    const r = loadAddon(['/nonexistent/build/Release/opdbus_native.node']);
    expect(r.addon).toBeNull();
    expect(r.addon === null ? r.reason : '').toMatch(
      /no opdbus_native\.node built .*\/nonexistent\/.*npm run build:native/,
    );
  });

  it.runIf(!availability.available)(`reports every function as unavailable: ${reason}`, () => {
    for (const f of [() => getAffinity(), () => setAffinity([0]), () => currentCpu()]) {
      expect(f).toThrow(expect.objectContaining({ code: 'NativeUnavailable' }));
    }
  });
});

describe('cpu lists', () => {
  it('parses and formats the kernel list format', () => {
    expect(parseCpuListText('0-3,8,10-11\n')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(parseCpuListText('\n')).toEqual([]);
    expect(formatCpuListText([11, 0, 1, 2, 3, 8, 10])).toBe('0-3,8,10-11');
    expect(() => parseCpuListText('0-x')).toThrow(/not a CPU list/);
  });
});

describe.skipIf(!availability.available)(
  `affinity and getcpu (addon: ${availability.available ? availability.file : reason})`,
  () => {
    let original: number[] = [];
    const workers: Worker[] = [];
    let fakeSys = '';

    beforeAll(() => {
      original = getAffinity();
      fakeSys = mkdtempSync(join(tmpdir(), 'opdbus-fake-sys-'));
      mkdirSync(join(fakeSys, 'devices/system/cpu'), { recursive: true });
      writeFileSync(join(fakeSys, 'devices/system/cpu/online'), '0\n');
      writeFileSync(join(fakeSys, 'devices/system/cpu/present'), '0-1\n');
    });
    afterEach(async () => {
      setAffinity(original);
      await Promise.all(workers.splice(0).map((w) => w.terminate()));
    });
    afterAll(() => {
      rmSync(fakeSys, { recursive: true, force: true });
    });

    it('pins every thread of the process, as /proc/self/task/*/status shows', async () => {
      const { worker, tid } = await idleWorker();
      workers.push(worker);
      const online = onlineCpus();
      for (const cpu of online) {
        const r = setAffinity([cpu]);
        const seen = allowedByThread();
        expect(seen.size).toBeGreaterThan(1);
        expect(seen.get(tid)).toBe(String(cpu)); // the worker thread, not only the main one
        for (const [thread, list] of seen) expect({ thread, list }).toEqual({ thread, list: String(cpu) });
        expect(r.threads).toContain(tid);
        expect(r.threads).toContain(process.pid);
        expect(getAffinity()).toEqual([cpu]);
        expect(getAffinity(tid)).toEqual([cpu]);
        // sched_setaffinity moves the calling thread before it returns
        expect(currentCpu().cpu).toBe(cpu);
      }
      setAffinity(online);
      for (const list of allowedByThread().values()) expect(list).toBe(formatCpuListText(online));
    });

    it('threads started after pinning inherit the mask', async () => {
      const online = onlineCpus();
      const last = online[online.length - 1] as number;
      setAffinity([last]);
      const { worker, tid } = await idleWorker();
      workers.push(worker);
      expect(allowedByThread().get(tid)).toBe(String(last));
    });

    it('a thread exiting mid-loop is not an error', async () => {
      const online = onlineCpus();
      let exited = 0;
      const churn = Array.from({ length: 6 }, (_, i) => {
        const w = new Worker(`setTimeout(() => process.exit(0), ${5 + i * 3});`, { eval: true });
        w.on('exit', () => exited++);
        return w;
      });
      const deadline = Date.now() + 3_000;
      let calls = 0;
      while (exited < churn.length && Date.now() < deadline) {
        setAffinity([online[calls % online.length] as number]);
        calls++;
        await new Promise((r) => setImmediate(r));
      }
      expect(exited).toBe(churn.length);
      expect(calls).toBeGreaterThan(0);
    });

    it('getcpu reports a CPU inside the allowed set and its NUMA node', () => {
      const allowed = getAffinity();
      for (let i = 0; i < 100; i++) expect(allowed).toContain(currentCpu().cpu);
      const { cpu, node } = currentCpu();
      const nodeCpus = parseCpuListText(readFileSync(`/sys/devices/system/node/node${node}/cpulist`, 'utf8'));
      expect(nodeCpus).toContain(cpu);
    });

    it('refuses an absent CPU naming it and the online set, and changes nothing', () => {
      const before = allowedByThread();
      const online = formatCpuListText(onlineCpus());
      let error: unknown;
      try {
        setAffinity([0, 4095]);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(NativeError);
      expect((error as NativeError).code).toBe('CpuAbsent');
      expect((error as NativeError).message).toBe(
        `CPU 4095 does not exist on this machine (online CPUs: ${online}; present: ${online})`,
      );
      expect(allowedByThread()).toEqual(before);
    });

    it('refuses an offline CPU naming it and the online set', () => {
      // this host cannot take a CPU offline safely: a sysfs tree where CPU 1 is present but offline
      expect(() => checkAffinityRequest([1], fakeSys)).toThrow('CPU 1 is offline (online CPUs: 0)');
      expect(() => setAffinity([0, 1], fakeSys)).toThrow(expect.objectContaining({ code: 'CpuOffline' }));
      expect(getAffinity()).toEqual(original);
    });

    it('refuses malformed requests with a clear error', () => {
      expect(() => setAffinity([])).toThrow('an affinity request must name at least one CPU');
      expect(() => setAffinity([-1])).toThrow('-1 is not a CPU number');
      expect(() => setAffinity([0.5])).toThrow('0.5 is not a CPU number');
    });

    it('turns errno into a typed error: ESRCH for a thread that does not exist', () => {
      const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
      let error: unknown;
      try {
        getAffinity(max + 1);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(NativeError);
      expect(error).toMatchObject({ code: 'ESRCH', errno: 3, syscall: 'sched_getaffinity' });
      expect((error as Error).message).toMatch(/sched_getaffinity\(tid \d+\): No such process \(ESRCH\)/);
    });
  },
);
