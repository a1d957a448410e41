// The data dir's layout. On BTRFS each part is a subvolume, so a snapshot of one never contains
// another (the audit log is never in a plugin-state snapshot), cache and payloads get zstd
// compression, and the SQLite directory is no-CoW. Elsewhere the same names are plain directories.
//
// Nothing is left half-made: each missing part is built under a temporary name, configured, then
// renamed into place; if any step fails, the parts this call created are removed again.

import {
  accessSync,
  closeSync,
  constants,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { OpError } from '../../common/contract/errors.js';
import { BtrfsCommand, isSubvolumeRoot } from './btrfs.js';
import { StorageError, storageErrorFrom } from './errors.js';
import {
  btrfsMountCompressionLevel,
  filesystemOf,
  nearestExisting,
  type FilesystemInfo,
} from './filesystem.js';
import { hasNoCow, setNoCow } from './nocow.js';

/** The parts of the data dir. */
export type StoragePart = 'cache' | 'audit' | 'payloads' | 'snapshots' | 'plugins';

/** What each part holds and how BTRFS should treat it. */
export const STORAGE_PARTS: Record<StoragePart, { compress: boolean; noCow: boolean; holds: string }> = {
  cache: { compress: true, noCow: false, holds: 'the embedding cache' },
  // main/service/audit/layout.ts: audit/audit.sqlite (+ -wal, -shm)
  audit: { compress: false, noCow: true, holds: 'the audit log (SQLite)' },
  // main/service/audit/layout.ts: payloads/ (the audit log's payload store)
  payloads: { compress: true, noCow: false, holds: 'audit payloads' },
  snapshots: {
    compress: false,
    noCow: false,
    holds: 'read-only snapshots of plugins/ taken before each apply',
  },
  plugins: { compress: false, noCow: false, holds: 'plugin state' },
};

const PART_NAMES = Object.keys(STORAGE_PARTS) as StoragePart[];

/** One part as found on disk. */
export interface PartState {
  path: string;
  kind: 'subvolume' | 'directory';
  /** The BTRFS compression property ("zstd"), null when unset or not on BTRFS. */
  compression: string | null;
  /** Whether FS_NOCOW_FL is set; null when not on BTRFS (no such attribute elsewhere). */
  noCow: boolean | null;
  /** Made by this call (false: it was there already). */
  created: boolean;
}

/** The data dir's layout, as found after preparing it. */
export interface StorageLayout {
  dataDir: string;
  filesystem: FilesystemInfo;
  /** btrfs: subvolumes, compression, no-CoW; plain: directories only. */
  mode: 'btrfs' | 'plain';
  /** On BTRFS: the level asked for and the level the kernel actually applies (from the mount options). */
  compression: { algorithm: 'zstd'; requestedLevel: number; levelInEffect: number } | null;
  parts: Record<StoragePart, PartState>;
  /** Things a person should know: a part that could not be made what it should be, a level not in effect. */
  warnings: string[];
}

/** How to prepare the data dir. */
export interface StorageOptions {
  /** zstd level for cache/ and payloads/ (1-15, default 3). */
  compressionLevel?: number;
  /** Refuse a filesystem with less than this many bytes available (default 16 MiB). */
  minFreeBytes?: number;
  /** The btrfs command (tests point it elsewhere). */
  btrfs?: BtrfsCommand;
}

const DEFAULT_MIN_FREE = 16 * 1024 * 1024;
/** Marks a part being built (`.<part>.partial-<pid>`): removed by the next prepareDataDir. */
export const PARTIAL_MARK = '.partial-';
/** Marks a part being replaced by a restore (`.<part>.replaced-<pid>`): put back by the next prepareDataDir when the part is missing. */
export const REPLACED_MARK = '.replaced-';

/** Creates or completes the data dir's layout (idempotent), or throws a StorageError having changed nothing. */
export function prepareDataDir(dataDir: string, options: StorageOptions = {}): StorageLayout {
  const dir = resolve(dataDir);
  const level = options.compressionLevel ?? 3;
  if (!Number.isInteger(level) || level < 1 || level > 15) {
    throw new OpError(
      'InvalidArgument',
      `the zstd level must be an integer from 1 to 15, not ${String(level)}`,
    );
  }
  const fs = filesystemOf(dir);
  checkWritable(dir, fs, options.minFreeBytes ?? DEFAULT_MIN_FREE);

  const warnings: string[] = [];
  const btrfs = options.btrfs ?? new BtrfsCommand();
  let mode: StorageLayout['mode'] = 'plain';
  if (fs.btrfs) {
    const probe = btrfs.probe();
    if (probe.ok) mode = 'btrfs';
    else
      warnings.push(
        `the data dir is on BTRFS but ${probe.reason}: plain directories, no subvolumes or compression`,
      );
  }

  const firstCreated = nearestExisting(dir) === dir ? null : firstMissing(dir);
  const created: string[] = [];
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    removeLeftovers(dir, mode, btrfs);
    for (const name of PART_NAMES) {
      const path = join(dir, name);
      if (exists(path)) continue;
      createPart(dir, name, mode, btrfs);
      created.push(path);
    }
  } catch (e) {
    for (const path of created.reverse()) removePart(path, mode, btrfs);
    if (firstCreated !== null) rmSync(firstCreated, { recursive: true, force: true });
    throw storageErrorFrom(e, `preparing the data dir ${dir}`, dir);
  }

  const parts = {} as Record<StoragePart, PartState>;
  for (const name of PART_NAMES) {
    parts[name] = inspectPart(join(dir, name), name, mode, btrfs, warnings);
    parts[name].created = created.includes(parts[name].path);
  }
  let compression: StorageLayout['compression'] = null;
  if (mode === 'btrfs') {
    const levelInEffect = btrfsMountCompressionLevel(fs.mount);
    compression = { algorithm: 'zstd', requestedLevel: level, levelInEffect };
    if (levelInEffect !== level) {
      warnings.push(
        `zstd level ${level} was asked for, but BTRFS takes the level from the mount option, not from the ` +
          `compression property: ${fs.mount?.mountPoint ?? 'the mount'} gives level ${levelInEffect} ` +
          `(mount it with compress=zstd:${level} for level ${level}; that also compresses files outside cache/ and payloads/)`,
      );
    }
  }
  return { dataDir: dir, filesystem: fs, mode, compression, parts, warnings };
}

/** The path of the topmost directory `mkdir -p dir` would create. */
function firstMissing(dir: string): string {
  let p = dir;
  while (!exists(resolve(p, '..'))) p = resolve(p, '..');
  return p;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Refuses a data dir that is not a directory, is on a read-only or full filesystem, or has a part in the way. */
function checkWritable(dir: string, fs: FilesystemInfo, minFree: number): void {
  const where = fs.mount === null ? fs.path : `${fs.mount.mountPoint} (${fs.mount.source}, ${fs.type})`;
  if (exists(dir) && !statSync(dir).isDirectory()) {
    throw new StorageError('NotADirectory', `the data dir ${dir} exists and is not a directory`, dir);
  }
  if (fs.readOnly) {
    throw new StorageError(
      'ReadOnly',
      `the data dir ${dir} is on a read-only filesystem: ${where} is mounted read-only; remount it read-write or choose another data dir`,
      dir,
    );
  }
  for (const name of PART_NAMES) {
    const path = join(dir, name);
    if (exists(path) && !lstatSync(path).isDirectory()) {
      throw new StorageError(
        'Conflict',
        `${path} exists and is not a directory: move it away so ${name}/ can be made`,
        path,
      );
    }
  }
  try {
    accessSync(fs.path, constants.W_OK);
  } catch (e) {
    throw storageErrorFrom(e, `the data dir ${dir} is not writable`, dir);
  }
  if (fs.availableBytes < minFree) {
    throw new StorageError(
      'NoSpace',
      `the filesystem of the data dir ${dir} is full: ${fs.availableBytes} bytes available on ${where}, at least ${minFree} needed`,
      dir,
    );
  }
  // statfs can promise space BTRFS cannot give (metadata full): a real write says for sure.
  const probe = join(fs.path, `.op-dbus-write-probe-${process.pid}`);
  try {
    const fd = openSync(probe, 'wx', 0o600);
    try {
      writeSync(fd, Buffer.alloc(64 * 1024));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw storageErrorFrom(e, `the data dir ${dir} cannot be written`, dir);
  } finally {
    rmSync(probe, { force: true });
  }
}

/** Builds one part under a temporary name, configures it while empty, and renames it into place. */
function createPart(dir: string, name: StoragePart, mode: StorageLayout['mode'], btrfs: BtrfsCommand): void {
  const spec = STORAGE_PARTS[name];
  const temp = join(dir, `.${name}${PARTIAL_MARK}${process.pid}`);
  try {
    if (mode === 'btrfs') {
      btrfs.createSubvolume(temp);
      // the property carries the algorithm only; see StorageLayout.compression for the level
      if (spec.compress) btrfs.setCompression(temp, 'zstd');
      if (spec.noCow && !setNoCow(temp).set) {
        throw new StorageError('Io', `FS_NOCOW_FL did not stick on ${temp}`, temp);
      }
    } else {
      mkdirSync(temp, { mode: 0o700 });
    }
    renameSync(temp, join(dir, name));
  } catch (e) {
    removePart(temp, mode, btrfs);
    throw e;
  }
}

/**
 * What a crash in the middle of createPart or a restore left: parts half built are removed; a part
 * moved aside by a restore goes back when its replacement never made it into place.
 */
function removeLeftovers(dir: string, mode: StorageLayout['mode'], btrfs: BtrfsCommand): void {
  for (const entry of readdirSync(dir)) {
    if (!entry.startsWith('.')) continue;
    const path = join(dir, entry);
    if (entry.includes(PARTIAL_MARK)) removePart(path, mode, btrfs);
    const replaced = entry.indexOf(REPLACED_MARK);
    if (replaced > 0) {
      const original = join(dir, entry.slice(1, replaced));
      if (!exists(original)) renameSync(path, original);
      else removePart(path, mode, btrfs);
    }
  }
}

/** Removes a part or a snapshot: a subvolume through btrfs, anything else recursively. Best effort. */
export function removePart(path: string, mode: StorageLayout['mode'], btrfs: BtrfsCommand): void {
  try {
    if (mode === 'btrfs' && exists(path) && isSubvolumeRoot(path)) btrfs.deleteSubvolume(path);
    else rmSync(path, { recursive: true, force: true });
  } catch {
    // best effort: the error that made us roll back is the one to report
  }
}

/** One part as it is on disk; on BTRFS a compressed part missing its property gets it back. */
function inspectPart(
  path: string,
  name: StoragePart,
  mode: StorageLayout['mode'],
  btrfs: BtrfsCommand,
  warnings: string[],
): PartState {
  if (mode !== 'btrfs') return { path, kind: 'directory', compression: null, noCow: null, created: false };
  const spec = STORAGE_PARTS[name];
  const subvolume = isSubvolumeRoot(path);
  let compression = btrfs.getCompression(path);
  const noCow = hasNoCow(path);
  if (!subvolume) {
    warnings.push(`${path} is a plain directory made before (not a subvolume): it is left as it is`);
  } else if (spec.compress && compression === null) {
    // a subvolume made without it: new files get compressed from now on
    btrfs.setCompression(path, 'zstd');
    compression = btrfs.getCompression(path);
  }
  if (spec.noCow && !noCow) {
    warnings.push(
      `${path} is not no-CoW (the attribute only applies to files created after it is set): SQLite there is copy-on-write`,
    );
  }
  return { path, kind: subvolume ? 'subvolume' : 'directory', compression, noCow, created: false };
}
