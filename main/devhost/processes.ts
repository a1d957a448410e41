import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { OpError } from '../common/contract/index.js';

// The development host finds its processes by PID file and /proc, never by name: the machine may run
// another dbus-daemon, polkitd or hostnamed, and those are not ours to stop.

const STOP_GRACE_MS = 5_000;
const POLL_MS = 50;

/** Starts a process in its own session with stdout and stderr appended to logPath; resolves once it runs. */
export async function spawnDetached(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  logPath: string,
  what: string,
): Promise<ChildProcess> {
  const log = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { detached: true, stdio: ['ignore', log, log], env });
  } finally {
    closeSync(log);
  }
  try {
    await new Promise<void>((resolveSpawn, rejectSpawn) => {
      child.once('spawn', resolveSpawn);
      child.once('error', rejectSpawn);
    });
  } catch (e) {
    throw new OpError(
      'Internal',
      `cannot start ${what} (${command}): ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  child.unref();
  return child;
}

/** How a child we spawned ended, or undefined while it runs. */
export function exitOf(child: ChildProcess): string | undefined {
  if (child.exitCode !== null) return `exit code ${child.exitCode}`;
  if (child.signalCode !== null) return `signal ${child.signalCode}`;
  return undefined;
}

/** The PID in pidFile if that process is alive and is the one we started (a PID may have been reused). */
export function livePidFromFile(pidFile: string, isOurs: (pid: number) => boolean): number | undefined {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return isAlive(pid) && isOurs(pid) ? pid : undefined;
}

/** A PID that may be missing, as the list HostComponent.processes returns. */
export function pidList(pid: number | undefined): number[] {
  return pid === undefined ? [] : [pid];
}

/**
 * SIGTERM, then SIGKILL after a grace period, waiting until pid (and with group, its whole process
 * group) is gone. A zombie counts as gone: it holds nothing and its parent may not be ours to reap it.
 */
export async function stopProcess(pid: number, what: string, opts: { group: boolean }): Promise<void> {
  const gone = (): boolean => !isAlive(pid) && (!opts.group || groupMembers(pid).length === 0);
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    try {
      process.kill(opts.group ? -pid : pid, signal);
    } catch {
      // Already gone (ESRCH).
    }
    const deadline = Date.now() + STOP_GRACE_MS;
    while (Date.now() < deadline) {
      if (gone()) return;
      await sleep(POLL_MS);
    }
  }
  if (!gone()) throw new OpError('Internal', `${what} (PID ${pid}) did not exit after SIGKILL`);
}

/** Alive and not a zombie. */
export function isAlive(pid: number): boolean {
  const stat = statOf(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

/** Every PID in /proc except this process's own. */
export function otherPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => Number.parseInt(name, 10))
    .filter((pid) => pid !== process.pid);
}

/** The process's command line, one string an argument. */
export function cmdlineOf(pid: number): string[] {
  return procStrings(`/proc/${pid}/cmdline`);
}

/** The process's environment as `NAME=value` strings (as it was at exec). */
export function environOf(pid: number): string[] {
  return procStrings(`/proc/${pid}/environ`);
}

/** The process's mount table, or '' when it is gone. */
export function mountinfoOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
  } catch {
    return '';
  }
}

/** The last lines of a log file, for an error that says why a process did not come up. */
export function logTail(path: string, lines = 20): string {
  try {
    const text = readFileSync(path, 'utf8').trimEnd();
    return text === '' ? '(empty)' : text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function groupMembers(pgid: number): number[] {
  return otherPids().filter((pid) => {
    const stat = statOf(pid);
    return stat !== undefined && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X';
  });
}

/** State and process group from /proc/PID/stat; the command name may hold spaces and parentheses. */
function statOf(pid: number): { state: string; pgrp: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const pgrp = Number.parseInt(fields[2] ?? '', 10);
  return state === undefined ? undefined : { state, pgrp };
}

function procStrings(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\0');
  } catch {
    return [];
  }
}
