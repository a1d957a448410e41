// Typed access to the Node-API addon in native/src/addon.cc (CPU affinity, getcpu, mincore,
// posix_fadvise, inode flags). Where the addon is not built or does not load, every function throws
// a NativeError with code "NativeUnavailable" and the reason; nothing here guesses or shells out.

import { closeSync, existsSync, fdatasyncSync, openSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The addon's file name under build/Release (binding.gyp's target_name). */
const ADDON_FILE = 'opdbus_native.node';

/** The functions the compiled addon exports (see native/src/addon.cc). */
interface Addon {
  getAffinity(tid?: number): number[];
  setAffinityAllThreads(cpus: number[]): { threads: number[]; vanished: number[] };
  getcpu(): { cpu: number; node: number };
  mincore(
    path: string,
    offset?: number,
    length?: number,
  ): { pageSize: number; fileSize: number; totalPages: number; residentPages: number };
  fadvise(path: string, advice: FileAdvice, offset?: number, length?: number): void;
  getInodeFlags(path: string): number;
  setInodeFlags(path: string, set: number, clear: number): number;
  mapFile(path: string): ArrayBuffer;
  auditWalk(
    rows: unknown[][],
    from: number,
    limitSeq: number,
    expected: number,
    prev: Uint8Array,
    frontier: Uint8Array,
    kinds: string,
  ): number;
}

/** Whether the addon loaded, and from where or why not. */
export type NativeAvailability = { available: true; file: string } | { available: false; reason: string };

/** An error from the addon (code = errno name such as "EINVAL") or about it ("NativeUnavailable", "CpuNotOnline"). */
export class NativeError extends Error {
  readonly code: string;
  readonly errno: number | undefined;
  readonly syscall: string | undefined;
  readonly path: string | undefined;

  constructor(
    code: string,
    message: string,
    extra: { errno?: number; syscall?: string; path?: string; cause?: unknown } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'NativeError';
    this.code = code;
    this.errno = extra.errno;
    this.syscall = extra.syscall;
    this.path = extra.path;
  }
}

/**
 * Where the addon may be: $OP_DBUS_NATIVE_ADDON, then native/build/Release above this module, so
 * the same code finds it from native/ (tests) and from dist/native/ (the built core).
 */
export function addonCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const explicit = env['OP_DBUS_NATIVE_ADDON'];
  if (explicit !== undefined && explicit !== '') return [explicit];
  const found: string[] = [];
  for (let dir = import.meta.dirname; dir !== dirname(dir); dir = dirname(dir)) {
    found.push(
      join(dir, 'build', 'Release', ADDON_FILE),
      join(dir, 'native', 'build', 'Release', ADDON_FILE),
    );
  }
  return found;
}

type Loaded = { addon: Addon; file: string } | { addon: null; reason: string };

/** Loads the first candidate that exists; the reason names every place looked at when none does. */
export function loadAddon(candidates: string[]): Loaded {
  if (process.platform !== 'linux')
    return { addon: null, reason: `the addon is Linux-only (this is ${process.platform})` };
  const file = candidates.find((c) => existsSync(c));
  if (file === undefined) {
    return {
      addon: null,
      reason: `no ${ADDON_FILE} built (looked in ${candidates.slice(0, 4).join(', ')}${candidates.length > 4 ? ', …' : ''}); build it with "npm run build:native"`,
    };
  }
  try {
    const require = createRequire(import.meta.url);
    return { addon: require(file) as Addon, file };
  } catch (e) {
    return { addon: null, reason: `${file} did not load: ${e instanceof Error ? e.message : String(e)}` };
  }
}

let loaded: Loaded | undefined;

function state(): Loaded {
  loaded ??= loadAddon(addonCandidates());
  return loaded;
}

/** Whether the native functions work in this process, with the file or the reason. */
export function nativeAvailability(): NativeAvailability {
  const s = state();
  return s.addon === null ? { available: false, reason: s.reason } : { available: true, file: s.file };
}

/** The addon, or a NativeUnavailable error naming what the caller wanted and why it cannot have it. */
function addon(what: string): Addon {
  const s = state();
  if (s.addon === null) throw new NativeError('NativeUnavailable', `${what} unavailable: ${s.reason}`);
  return s.addon;
}

/** The addon's plain Error (code/errno/syscall/path properties) as a NativeError prefixed with `what`. */
function toNativeError(what: string, e: unknown): NativeError {
  if (e instanceof NativeError) return e;
  const props = (e ?? {}) as {
    code?: unknown;
    errno?: unknown;
    syscall?: unknown;
    path?: unknown;
    message?: unknown;
  };
  const extra: { errno?: number; syscall?: string; path?: string; cause: unknown } = { cause: e };
  if (typeof props.errno === 'number') extra.errno = props.errno;
  if (typeof props.syscall === 'string') extra.syscall = props.syscall;
  if (typeof props.path === 'string') extra.path = props.path;
  const code = typeof props.code === 'string' ? props.code : 'Internal';
  const message = typeof props.message === 'string' ? props.message : String(e);
  return new NativeError(code, `${what}: ${message}`, extra);
}

function call<T>(what: string, f: (a: Addon) => T): T {
  const a = addon(what);
  try {
    return f(a);
  } catch (e) {
    throw toNativeError(what, e);
  }
}

/** Parses the kernel's CPU list format ("0-3,8"; "" for none) into sorted ids. */
export function parseCpuListText(text: string): number[] {
  const body = text.replace(/\0/g, '').trim();
  if (body === '') return [];
  const ids = new Set<number>();
  for (const part of body.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (m === null) throw new NativeError('EBADMSG', `not a CPU list: ${JSON.stringify(text.slice(0, 40))}`);
    const low = Number(m[1]);
    const high = m[2] === undefined ? low : Number(m[2]);
    if (high < low || high > 65_535) throw new NativeError('EBADMSG', `bad CPU range ${part}`);
    for (let id = low; id <= high; id++) ids.add(id);
  }
  return [...ids].sort((a, b) => a - b);
}

/** Formats sorted ids in the kernel's list format ("0-3,8"). */
export function formatCpuListText(ids: readonly number[]): string {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

function readCpuList(sysRoot: string, name: string): number[] | null {
  try {
    return parseCpuListText(readFileSync(join(sysRoot, 'devices/system/cpu', name), 'utf8'));
  } catch {
    return null;
  }
}

/** The online CPUs (/sys/devices/system/cpu/online). */
export function onlineCpus(sysRoot = '/sys'): number[] {
  const online = readCpuList(sysRoot, 'online');
  if (online === null) {
    throw new NativeError('ENOENT', `cannot read ${join(sysRoot, 'devices/system/cpu/online')}`);
  }
  return online;
}

/**
 * Checks an affinity request against the machine before any system call: an empty list, a CPU
 * that is absent (not in `present`) or offline (not in `online`) is refused with the online set in
 * the message, instead of the kernel's bare EINVAL.
 */
export function checkAffinityRequest(cpus: readonly number[], sysRoot = '/sys'): void {
  if (cpus.length === 0) throw new NativeError('EINVAL', 'an affinity request must name at least one CPU');
  for (const cpu of cpus) {
    if (!Number.isInteger(cpu) || cpu < 0) {
      throw new NativeError('EINVAL', `${String(cpu)} is not a CPU number (a non-negative integer)`);
    }
  }
  const online = onlineCpus(sysRoot);
  const present = readCpuList(sysRoot, 'present') ?? online;
  const onlineText = formatCpuListText(online);
  const absent = cpus.filter((c) => !present.includes(c));
  if (absent.length > 0) {
    throw new NativeError(
      'CpuAbsent',
      `CPU ${formatCpuListText(absent)} does not exist on this machine (online CPUs: ${onlineText}; present: ${formatCpuListText(present)})`,
    );
  }
  const offline = cpus.filter((c) => !online.includes(c));
  if (offline.length > 0) {
    throw new NativeError(
      'CpuOffline',
      `CPU ${formatCpuListText(offline)} is offline (online CPUs: ${onlineText})`,
    );
  }
}

/** The CPUs the given thread (default: the calling thread) may run on. */
export function getAffinity(tid = 0): number[] {
  return call('sched_getaffinity', (a) => a.getAffinity(tid));
}

/** What setAffinity changed: every thread it pinned and those that exited meanwhile. */
export interface AffinityResult {
  cpus: number[];
  threads: number[];
  vanished: number[];
}

/**
 * Restricts every thread of the process (each entry of /proc/self/task) to `cpus`. Refuses absent
 * or offline CPUs with a message naming them and the online set; on any other failure the threads
 * already changed are put back before the error is thrown.
 */
export function setAffinity(cpus: readonly number[], sysRoot = '/sys'): AffinityResult {
  const a = addon('sched_setaffinity');
  checkAffinityRequest(cpus, sysRoot);
  try {
    const r = a.setAffinityAllThreads([...cpus]);
    return { cpus: [...new Set(cpus)].sort((x, y) => x - y), ...r };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'EINVAL') {
      // The CPUs are online but the kernel still refused: they lie outside this process's cpuset.
      throw new NativeError(
        'EINVAL',
        `sched_setaffinity refused CPU ${formatCpuListText(cpus)} although online (${formatCpuListText(onlineCpus(sysRoot))}): ` +
          `outside this process's cpuset${cpusetHint()}`,
        { errno: 22, syscall: 'sched_setaffinity', cause: e },
      );
    }
    throw toNativeError('sched_setaffinity', e);
  }
}

function cpusetHint(): string {
  try {
    const cgroup = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1];
    if (cgroup === undefined) return '';
    const file = join('/sys/fs/cgroup', cgroup, 'cpuset.cpus.effective');
    return ` (${file}: ${readFileSync(file, 'utf8').trim()})`;
  } catch {
    return '';
  }
}

/** The CPU and NUMA node the calling thread is running on at this instant. */
export function currentCpu(): { cpu: number; node: number } {
  return call('getcpu', (a) => a.getcpu());
}

/** How much of a file is in the page cache. */
export interface Residency {
  pageSize: number;
  fileSize: number;
  totalPages: number;
  residentPages: number;
  /** residentPages / totalPages; 0 for an empty file. */
  fraction: number;
}

/**
 * A whole file mapped read-only (mmap, MAP_SHARED): reads go straight to the page cache, with no
 * copy. The mapping is released when the ArrayBuffer is garbage-collected. Node only (Electron
 * forbids external buffers).
 */
export function mapFile(path: string): ArrayBuffer {
  return call('mmap', (a) => a.mapFile(path));
}

/**
 * The audit verify walk's fast path (native/src/audit_walk.cc), or undefined without the addon: how many
 * rows from `from` on the walk accepts, moving the state (prev leaf; right border, 64 levels of 32 bytes,
 * level l meaningful when bit l of `expected` is set) past them in place. It stops at, and never judges,
 * a row it is not sure of: main/audit/verify-walk.ts walks that one.
 */
export function auditWalkFunction(): Addon['auditWalk'] | undefined {
  const s = state();
  return s.addon === null || typeof s.addon.auditWalk !== 'function' ? undefined : s.addon.auditWalk;
}

/** Page-cache residency of a file (or of `offset`…`offset+length`), by mmap + mincore. */
export function pageCacheResidency(
  path: string,
  range: { offset?: number; length?: number } = {},
): Residency {
  const r = call('mincore', (a) => a.mincore(path, range.offset, range.length));
  return { ...r, fraction: r.totalPages === 0 ? 0 : r.residentPages / r.totalPages };
}

/** posix_fadvise advice names. */
export type FileAdvice = 'normal' | 'sequential' | 'random' | 'willneed' | 'dontneed' | 'noreuse';

/**
 * Linux caps one WILLNEED at the device's readahead window (max of read_ahead_kb and
 * max_sectors_kb: 8 MiB on this VM, often ~1 MiB): a longer range is advised window by window.
 */
const WILLNEED_WINDOW = 1024 * 1024;

/** posix_fadvise on a file range (length 0 or absent: to the end of the file). */
export function adviseFile(
  path: string,
  advice: FileAdvice,
  range: { offset?: number; length?: number } = {},
): void {
  const what = `posix_fadvise(${advice})`;
  const offset = range.offset ?? 0;
  const length = range.length ?? 0;
  if (advice !== 'willneed') {
    call(what, (a) => a.fadvise(path, advice, offset, length));
    return;
  }
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw toNativeError(what, e);
  }
  const end = length === 0 ? size : Math.min(size, offset + length);
  if (end <= offset) {
    call(what, (a) => a.fadvise(path, advice, offset, length));
    return;
  }
  for (let at = offset; at < end; at += WILLNEED_WINDOW) {
    call(what, (a) => a.fadvise(path, advice, at, Math.min(WILLNEED_WINDOW, end - at)));
  }
}

/**
 * Drops a file's pages from the page cache: writes dirty pages back first (fdatasync), since
 * DONTNEED leaves dirty pages in place, then advises DONTNEED. Returns the residency afterwards.
 */
export function dropFromPageCache(path: string): Residency {
  addon('posix_fadvise(dontneed)');
  const fd = openSync(path, 'r');
  try {
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  adviseFile(path, 'dontneed');
  return pageCacheResidency(path);
}

/** The inode flags lsattr shows (FS_IOC_GETFLAGS). */
export function inodeFlags(path: string): number {
  return call('FS_IOC_GETFLAGS', (a) => a.getInodeFlags(path));
}

/** FS_NOCOW_FL ('C' in lsattr) and FS_NOCOMP_FL, as this kernel's headers define them. */
export const INODE_FLAGS = { noCow: 0x0080_0000, noCompress: 0x0000_0400 } as const;

/** Adds and removes inode flags (FS_IOC_SETFLAGS); returns the flags read back. */
export function setInodeFlags(path: string, change: { set?: number; clear?: number }): number {
  return call('FS_IOC_SETFLAGS', (a) => a.setInodeFlags(path, change.set ?? 0, change.clear ?? 0));
}
