import type { PluginContext } from '../../main/sdk/index.js';

// systemd's job semantics: StartUnit/StopUnit queue a job and return its object path at once; the
// job's outcome arrives later as Manager.JobRemoved(id, path, unit, result). The listener is in
// place (and Subscribe called) before the first job is queued, so no JobRemoved can be missed,
// on a connection of the apply's own, so the subscription ends with it.

export const SYSTEMD = 'org.freedesktop.systemd1';
export const ROOT = '/org/freedesktop/systemd1';
export const MANAGER = 'org.freedesktop.systemd1.Manager';

export interface Job {
  unit: string;
  type: 'start' | 'stop';
}

/** A job that did not end "done": the unit and systemd's result (failed, timeout, dependency, ...). */
export interface JobFailure {
  unit: string;
  type: Job['type'];
  result: string;
}

/** Queues every job at once (as systemctl does for several units) and waits for each one's JobRemoved. */
export async function runJobs(
  ctx: PluginContext,
  jobs: readonly Job[],
  timeoutMs: number,
): Promise<JobFailure[]> {
  if (jobs.length === 0) return [];
  const conn = await ctx.bus.open();
  const results = new Map<string, string>();
  const waiting = new Map<string, (result: string) => void>();
  try {
    const stopListening = await conn.listen(
      { sender: SYSTEMD, interface: MANAGER, member: 'JobRemoved', path: ROOT },
      (signal) => {
        const [, path, , result] = signal.body;
        if (typeof path !== 'string' || typeof result !== 'string') return;
        const wake = waiting.get(path);
        if (wake !== undefined) wake(result);
        else results.set(path, result);
      },
    );
    try {
      await conn.call({ destination: SYSTEMD, path: ROOT, interface: MANAGER, member: 'Subscribe' });
      const queued: { job: Job; path: string }[] = [];
      for (const job of jobs) {
        ctx.signal.throwIfAborted();
        const [path] = await conn.call({
          destination: SYSTEMD,
          path: ROOT,
          interface: MANAGER,
          member: job.type === 'start' ? 'StartUnit' : 'StopUnit',
          signature: 'ss',
          body: [job.unit, 'replace'],
        });
        if (typeof path !== 'string')
          throw new Error(`${job.type} of ${job.unit}: systemd returned no job path`);
        queued.push({ job, path });
        ctx.progress(`${job.unit}: ${job.type} job ${path.slice(path.lastIndexOf('/') + 1)} queued`);
      }
      const failures: JobFailure[] = [];
      for (const { job, path } of queued) {
        const result = await jobResult(path, results, waiting, timeoutMs, ctx.signal, job);
        ctx.progress(`${job.unit}: ${job.type} job ${result}`);
        if (result !== 'done') failures.push({ unit: job.unit, type: job.type, result });
      }
      return failures;
    } finally {
      await stopListening();
    }
  } finally {
    conn.close();
  }
}

function jobResult(
  path: string,
  results: Map<string, string>,
  waiting: Map<string, (result: string) => void>,
  timeoutMs: number,
  signal: AbortSignal,
  job: Job,
): Promise<string> {
  const early = results.get(path);
  if (early !== undefined) return Promise.resolve(early);
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      waiting.delete(path);
      signal.removeEventListener('abort', onAbort);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${job.type} job of ${job.unit} (${path}) did not end within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const onAbort = (): void => {
      done();
      reject(signal.reason instanceof Error ? signal.reason : new Error('cancelled'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    waiting.set(path, (result) => {
      done();
      resolve(result);
    });
  });
}
