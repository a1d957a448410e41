// Guarded access to the files under a sysfs root: every failure becomes a warning naming the file
// (relative to the root) instead of an exception, and directories reached through a symlink back to
// one of their own ancestors are refused, so a cycle is never walked.

import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
  readdirSync,
  realpathSync,
  statSync,
} from 'node:fs';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';

import { formatCpuList } from './cpulist.js';
import { SysfsFormatError } from './sysfs-text.js';

// A sysfs attribute is at most one page; 64 KiB covers 64K-page kernels (arm64, ppc64). A bigger
// file under a fake or damaged root is not an attribute and is not read whole.
const MAX_ATTRIBUTE_BYTES = 64 * 1024;

/** Whether the absence of a file is worth a warning: required ones have no fallback on any kernel. */
export type Presence = 'required' | 'optional';

/** What reading one file gave; failures are warned when they happen. */
export type ReadResult = { kind: 'text'; text: string } | { kind: 'missing' } | { kind: 'failed' };

/** What reading and parsing one file gave; failures are warned when they happen. */
export type ParseOutcome<T> = { kind: 'value'; value: T } | { kind: 'missing' } | { kind: 'failed' };

interface Warning {
  path: string;
  message: string;
}

const PER_CPU_PATH = /^(devices\/system\/cpu\/cpu)(\d+)(\/.*)?$/u;

/**
 * Warnings in the order they arose. The same message about the same file of many CPUs (an old
 * kernel's empty cpuN/online, say) is listed once as "cpu{0-127}/online" rather than 128 times.
 */
export class WarningLog {
  private readonly entries: Warning[] = [];

  /** Record a warning about a path relative to the sysfs root. */
  add(path: string, message: string): void {
    this.entries.push({ path, message });
  }

  /** The warnings as "path: message" lines, per-CPU repeats merged. */
  lines(): string[] {
    const groups = new Map<string, { prefix: string; suffix: string; cpus: number[]; message: string }>();
    const lines: Array<string | { group: string }> = [];
    for (const { path, message } of this.entries) {
      const perCpu = PER_CPU_PATH.exec(path);
      if (perCpu === null) {
        lines.push(`${path}: ${message}`);
        continue;
      }
      const [, prefix = '', cpu = '', suffix = ''] = perCpu;
      const key = `${suffix}\0${message}`;
      const group = groups.get(key);
      if (group === undefined) {
        groups.set(key, { prefix, suffix, cpus: [Number(cpu)], message });
        lines.push({ group: key });
      } else {
        group.cpus.push(Number(cpu));
      }
    }
    return lines.map((line) => {
      if (typeof line === 'string') return line;
      const group = groups.get(line.group);
      if (group === undefined) return '';
      const cpus = group.cpus.length === 1 ? `${group.cpus[0]}` : `{${formatCpuList(group.cpus)}}`;
      return `${group.prefix}${cpus}${group.suffix}: ${group.message}`;
    });
  }
}

function errorCode(error: unknown): string {
  return error instanceof Error && 'code' in error && typeof error.code === 'string'
    ? error.code
    : String(error);
}

function describeFailure(error: unknown): string {
  const code = errorCode(error);
  if (code === 'ELOOP') return 'symlink loop';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return `unreadable (${code})`;
}

/** Whether `path` is `directory` itself or lies below it (both resolved). */
function isSameOrInside(path: string, directory: string): boolean {
  const fromDirectory = relative(directory, path);
  return !(fromDirectory === '..' || fromDirectory.startsWith(`..${sep}`) || isAbsolute(fromDirectory));
}

/** Read-only, warning-collecting access to one sysfs root. */
export class SysfsTree {
  readonly warnings = new WarningLog();
  // One buffer for all reads: allocating (and zeroing) 64 KiB per attribute dominated the run time.
  private readonly buffer = Buffer.allocUnsafe(MAX_ATTRIBUTE_BYTES + 1);

  /** `root` must already be a resolved (realpath) directory. */
  constructor(private readonly root: string) {}

  /** Record a warning about a path relative to the root. */
  warn(path: string, message: string): void {
    this.warnings.add(path, message);
  }

  /**
   * Whether `path` is a directory that may be entered. A symlink is followed only when it resolves
   * to a directory that is not the link's own parent or one of its ancestors (that would be a cycle).
   */
  enterDirectory(path: string, presence: Presence): boolean {
    const absolute = join(this.root, path);
    let entry;
    try {
      entry = lstatSync(absolute);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') {
        if (presence === 'required') this.warn(path, 'missing');
      } else {
        this.warn(path, describeFailure(error));
      }
      return false;
    }
    if (entry.isSymbolicLink()) {
      let target: string;
      let parent: string;
      try {
        target = realpathSync(absolute);
        parent = realpathSync(dirname(absolute));
      } catch (error) {
        const code = errorCode(error);
        this.warn(path, code === 'ENOENT' ? 'dangling symlink' : describeFailure(error));
        return false;
      }
      if (isSameOrInside(parent, target)) {
        this.warn(path, 'symlink to its own ancestor (a cycle); not followed');
        return false;
      }
      try {
        if (!statSync(target).isDirectory()) {
          this.warn(path, 'not a directory');
          return false;
        }
      } catch (error) {
        this.warn(path, describeFailure(error));
        return false;
      }
      return true;
    }
    if (!entry.isDirectory()) {
      this.warn(path, 'not a directory');
      return false;
    }
    return true;
  }

  /** Entry names of a directory already vetted by enterDirectory; undefined (warned) when unreadable. */
  listDirectory(path: string): string[] | undefined {
    try {
      return readdirSync(join(this.root, path));
    } catch (error) {
      this.warn(path, describeFailure(error));
      return undefined;
    }
  }

  /** The text of an attribute file; failures other than absence are warned. */
  read(path: string): ReadResult {
    let descriptor: number;
    try {
      // O_NONBLOCK: a FIFO planted under a fake root must not hang the reader.
      descriptor = openSync(join(this.root, path), constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return { kind: 'missing' };
      this.warn(path, describeFailure(error));
      return { kind: 'failed' };
    }
    try {
      if (!fstatSync(descriptor).isFile()) {
        this.warn(path, 'not a regular file');
        return { kind: 'failed' };
      }
      const buffer = this.buffer;
      let length = 0;
      for (;;) {
        const count = readSync(descriptor, buffer, length, buffer.length - length, null);
        if (count === 0) break;
        length += count;
        if (length > MAX_ATTRIBUTE_BYTES) {
          this.warn(path, `larger than any sysfs attribute (over ${MAX_ATTRIBUTE_BYTES} bytes)`);
          return { kind: 'failed' };
        }
      }
      return { kind: 'text', text: buffer.toString('utf8', 0, length) };
    } catch (error) {
      this.warn(path, describeFailure(error));
      return { kind: 'failed' };
    } finally {
      closeSync(descriptor);
    }
  }

  /** Read and parse one attribute: its value, or whether it was missing or unusable (the latter warned). */
  parseOutcome<T>(path: string, parser: (text: string) => T): ParseOutcome<T> {
    const result = this.read(path);
    if (result.kind !== 'text') return result;
    try {
      return { kind: 'value', value: parser(result.text) };
    } catch (error) {
      if (!(error instanceof SysfsFormatError)) throw error;
      this.warn(path, error.message);
      return { kind: 'failed' };
    }
  }

  /** Read and parse one attribute; undefined when missing (warned if required) or unusable (warned). */
  parse<T>(path: string, parser: (text: string) => T, presence: Presence): T | undefined {
    const outcome = this.parseOutcome(path, parser);
    if (outcome.kind === 'missing' && presence === 'required') this.warn(path, 'missing');
    return outcome.kind === 'value' ? outcome.value : undefined;
  }
}
