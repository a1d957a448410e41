import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

// LXC's own tools, always with -P (the plugin's lxcpath) and argument arrays. A plan runs exactly one
// process (`lxc-ls -f`) and reads the config files directly: never a process per container.

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs an lxc-* tool (or tar); the error names the command and carries its stderr. */
export function tool(
  command: string,
  args: readonly string[],
  o: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { timeout: o.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error !== null) {
          const why = stderr.trim().split('\n').slice(-3).join(' | ') || error.message;
          reject(new Error(`${command} ${args.join(' ')}: ${why}`));
        } else resolve({ stdout, stderr });
      },
    );
  });
}

/** Each container's state as `lxc-ls -f` says it (one process for all of them). */
export async function containerStates(lxcpath: string): Promise<Map<string, string>> {
  const states = new Map<string, string>();
  if (!existsSync(lxcpath)) return states;
  const { stdout } = await tool('lxc-ls', ['-P', lxcpath, '-f', '-F', 'NAME,STATE']);
  const lines = stdout.split('\n');
  for (const line of lines.slice(1)) {
    const [name, state] = line.trim().split(/\s+/);
    if (name !== undefined && name !== '' && state !== undefined) states.set(name, state);
  }
  return states;
}

/** The text of every container's config file under lxcpath (read directly, in parallel batches). */
export async function readConfigs(lxcpath: string, names: Iterable<string>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const list = [...names];
  const BATCH = 64;
  for (let i = 0; i < list.length; i += BATCH) {
    const part = list.slice(i, i + BATCH);
    const texts = await Promise.all(
      part.map((n) => readFile(join(lxcpath, n, 'config'), 'utf8').catch(() => undefined)),
    );
    part.forEach((n, j) => {
      const t = texts[j];
      if (t !== undefined) out.set(n, t);
    });
  }
  return out;
}

/** The directories under lxcpath that hold a config file's worth of container (names only). */
export async function containerDirs(lxcpath: string): Promise<string[]> {
  if (!existsSync(lxcpath)) return [];
  const entries = await readdir(lxcpath, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory()).map((e) => e.name);
}

export type CgroupLayout = 'v1' | 'v2';

/** Which cgroup version holds the memory controller here (LXC uses v1's where the host mounts it). */
export function cgroupLayout(): CgroupLayout {
  return existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes') ? 'v1' : 'v2';
}

/** Whether v1's memory controller accounts swap (memory.memsw.*): without it, swap cannot be bounded. */
export function swapAccounting(): boolean {
  return existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes');
}

/** Runs fn over items with at most `limit` at once; every item runs, and the first error is thrown after. */
export async function pool<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const errors: unknown[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length > 0) throw errors[0];
}
