// BTRFS administration through the `btrfs` command (btrfs-progs). These are rare operations (the
// layout once, one snapshot per apply) where a few milliseconds of process start do not matter, and
// btrfs-progs is the interface admins inspect the result with; the native addon stays optional.

import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { StorageError } from './errors.js';

/** Every subvolume's root directory has this inode number (BTRFS_FIRST_FREE_OBJECTID). */
const SUBVOLUME_ROOT_INODE = 256;

/** Runs `btrfs` with arguments; failures carry its stderr. */
export class BtrfsCommand {
  constructor(readonly executable = 'btrfs') {}

  /** Whether the command runs at all (btrfs-progs installed), with the reason when not. */
  probe(): { ok: true; version: string } | { ok: false; reason: string } {
    try {
      return { ok: true, version: this.run(['--version'], '').trim() };
    } catch (e) {
      return { ok: false, reason: e instanceof Error ? e.message : String(e) };
    }
  }

  /** A new empty subvolume at `path` (whose parent exists). */
  createSubvolume(path: string): void {
    this.run(['subvolume', 'create', path], path);
  }

  /** A snapshot of the subvolume `source` at `target`; read-only unless `writable`. */
  snapshot(source: string, target: string, writable = false): void {
    this.run(['subvolume', 'snapshot', ...(writable ? [] : ['-r']), source, target], target);
  }

  /** Deletes the subvolume (and, since it is one, everything in it) at `path`. */
  deleteSubvolume(path: string): void {
    this.run(['subvolume', 'delete', path], path);
  }

  /** Sets the compression property ("zstd", "" to reset) on a file, directory or subvolume. */
  setCompression(path: string, algorithm: string): void {
    this.run(['property', 'set', path, 'compression', algorithm], path);
  }

  /** The compression property of `path`, or null when none is set. */
  getCompression(path: string): string | null {
    const out = this.run(['property', 'get', path, 'compression'], path);
    const m = /^compression=(.*)$/m.exec(out);
    return m?.[1] === undefined || m[1] === '' ? null : m[1];
  }

  /** Makes a subvolume read-only (or writable again): the `ro` property. */
  setReadOnly(path: string, readOnly: boolean): void {
    this.run(['property', 'set', '-ts', path, 'ro', String(readOnly)], path);
  }

  /** Whether the subvolume at path is read-only. */
  isReadOnly(path: string): boolean {
    return /^ro=true$/m.test(this.run(['property', 'get', '-ts', path, 'ro'], path));
  }

  private run(args: string[], path: string): string {
    try {
      return execFileSync(this.executable, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const err = e as { code?: unknown; stderr?: unknown; status?: unknown };
      const command = `${this.executable} ${args.join(' ')}`;
      if (err.code === 'ENOENT') {
        throw new StorageError(
          'BtrfsCommandFailed',
          `${this.executable} not found: install btrfs-progs to manage subvolumes`,
          path,
          e,
        );
      }
      const stderr = typeof err.stderr === 'string' ? err.stderr.trim() : '';
      const readOnly = /read-only file system/i.test(stderr);
      const full = /no space left/i.test(stderr);
      throw new StorageError(
        readOnly ? 'ReadOnly' : full ? 'NoSpace' : 'BtrfsCommandFailed',
        `${command} failed (exit ${String(err.status)}): ${stderr || 'no message'}`,
        path,
        e,
      );
    }
  }
}

/** Whether `path` is the root of a BTRFS subvolume (call only on BTRFS: elsewhere inode 256 means nothing). */
export function isSubvolumeRoot(path: string): boolean {
  const s = statSync(path, { bigint: true });
  return s.isDirectory() && s.ino === BigInt(SUBVOLUME_ROOT_INODE);
}
