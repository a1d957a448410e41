// Which filesystem a path is on, read without running any command: statfs(2) f_type for the kind
// (exact for the path itself, also under bind mounts and subvolumes), /proc/self/mountinfo for the
// mount point, device and options (read-only, compress=...).

import { existsSync, readFileSync, realpathSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';

/** f_type values (linux/magic.h) of the filesystems worth naming. */
const MAGIC: Record<number, string> = {
  0x9123683e: 'btrfs',
  0xef53: 'ext4', // ext2/3/4 share it; mountinfo says which
  0x58465342: 'xfs',
  0x01021994: 'tmpfs',
  0x794c7630: 'overlay',
  0x2fc12fc1: 'zfs',
  0x6969: 'nfs',
  0xf2f52010: 'f2fs',
  0x858458f6: 'ramfs',
};

/** BTRFS_SUPER_MAGIC. */
export const BTRFS_MAGIC = 0x9123683e;

/** One line of /proc/self/mountinfo. */
export interface MountEntry {
  mountPoint: string;
  /** The path inside the filesystem that is mounted there ("/" or e.g. "/@home" for a subvolume). */
  root: string;
  fsType: string;
  source: string;
  /** Per-mount options (ro/rw, relatime...). */
  mountOptions: string[];
  /** Filesystem-wide options (for BTRFS: compress=zstd:3, subvol=...). */
  superOptions: string[];
}

/** What the data dir is stored on. */
export interface FilesystemInfo {
  /** The path examined (the data dir, or its nearest existing ancestor when it does not exist yet). */
  path: string;
  /** statfs f_type. */
  magic: number;
  /** The type mountinfo names for the mount (ext4, btrfs...), or the f_type's name when no mount entry matched. */
  type: string;
  btrfs: boolean;
  mount: MountEntry | null;
  readOnly: boolean;
  /** Bytes an unprivileged writer could still use (f_bavail × f_bsize). */
  availableBytes: number;
  totalBytes: number;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** Parses /proc/self/mountinfo text; lines that do not have the documented shape are skipped. */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (separator < 0 || fields.length < separator + 4) continue;
    entries.push({
      root: unescapeMountField(fields[3] as string),
      mountPoint: unescapeMountField(fields[4] as string),
      mountOptions: (fields[5] as string).split(','),
      fsType: fields[separator + 1] as string,
      source: unescapeMountField(fields[separator + 2] as string),
      superOptions: (fields[separator + 3] as string).split(','),
    });
  }
  return entries;
}

/** The mount that holds `path` (an absolute, resolved path): the longest mount point above it, the last one mounted. */
export function mountOf(path: string, mounts: MountEntry[]): MountEntry | null {
  let best: MountEntry | null = null;
  for (const m of mounts) {
    const under = m.mountPoint === '/' || path === m.mountPoint || path.startsWith(`${m.mountPoint}/`);
    if (under && (best === null || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

/** The path itself, or its nearest ancestor that exists (for a data dir not created yet). */
export function nearestExisting(path: string): string {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

/** The filesystem `path` (or, when it does not exist yet, its nearest existing ancestor) is on. */
export function filesystemOf(path: string, mountInfoText?: string): FilesystemInfo {
  const existing = realpathSync(nearestExisting(path));
  const s = statfsSync(existing);
  let mounts: MountEntry[] = [];
  try {
    mounts = parseMountInfo(mountInfoText ?? readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    // no /proc: the kind still comes from statfs, without mount options
  }
  const mount = mountOf(existing, mounts);
  const magic = s.type >>> 0;
  const readOnly = mount !== null && (mount.mountOptions.includes('ro') || mount.superOptions.includes('ro'));
  return {
    path: existing,
    magic,
    type: mount?.fsType ?? MAGIC[magic] ?? `unknown (f_type 0x${magic.toString(16)})`,
    btrfs: magic === BTRFS_MAGIC,
    mount,
    readOnly,
    availableBytes: s.bavail * s.bsize,
    totalBytes: s.blocks * s.bsize,
  };
}

/**
 * The zstd level BTRFS applies to property-compressed files: the kernel takes it from the mount's
 * compress=<alg>:<level> option (the compression property carries no level), default 3.
 */
export function btrfsMountCompressionLevel(mount: MountEntry | null): number {
  for (const o of mount?.superOptions ?? []) {
    const m = /^compress(?:-force)?=\w+:(-?\d+)$/.exec(o);
    if (m !== null) return Number(m[1]) === 0 ? 3 : Number(m[1]);
  }
  return 3;
}
