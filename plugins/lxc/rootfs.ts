import { existsSync, readFileSync, realpathSync, statfsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tool } from './host.js';

// A container's rootfs where the LXC path is on BTRFS: a subvolume per container, bounded by a qgroup
// limit of `properties.rootfs` GiB (`btrfs qgroup limit NG SUBVOL`). Quotas are the admin's switch:
// the plugin reads whether they are on (`btrfs qgroup show`) and refuses a bound when they are off,
// never enables them. Elsewhere (a directory on ext4, xfs...) the size is recorded, not bounded.
// Every call is a `btrfs` argument array.

const BTRFS_SUPER_MAGIC = 0x9123683e;
/** Every subvolume's root directory has this inode number (BTRFS_FIRST_FREE_OBJECTID). */
const SUBVOLUME_ROOT_INODE = 256;
export const GIB = 1024 * 1024 * 1024;

/** What the storage under the LXC path can do with a rootfs size. */
export type RootfsStorage =
  | { kind: 'directory' }
  | { kind: 'btrfs'; quotas: true; filesystem: string }
  | { kind: 'btrfs'; quotas: false; filesystem: string; why: string };

/** The nearest existing directory at or above path (the LXC path may not exist before the first create). */
function existing(path: string): string {
  let p = path;
  while (!existsSync(p) && p !== dirname(p)) p = dirname(p);
  return p;
}

/** Whether path (or, when absent, its nearest existing parent) is on BTRFS: one statfs, no process. */
export function onBtrfs(path: string): boolean {
  try {
    return statfsSync(existing(path)).type === BTRFS_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/** Whether path is the root of a BTRFS subvolume (meaningful only on BTRFS). */
export function isSubvolume(path: string): boolean {
  try {
    const s = statSync(path, { bigint: true });
    return s.isDirectory() && s.ino === BigInt(SUBVOLUME_ROOT_INODE);
  } catch {
    return false;
  }
}

/** The BTRFS mount holding path, as "DEVICE mounted at MOUNTPOINT" (from /proc/self/mountinfo). */
export function filesystemOf(path: string): string {
  const real = realpathSync(existing(path));
  let best: { point: string; source: string } | undefined;
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
      const [left, right] = line.split(' - ');
      if (left === undefined || right === undefined) continue;
      const point = (left.split(' ')[4] ?? '').replace(/\\040/g, ' ');
      const [fstype, source] = right.split(' ');
      if (fstype !== 'btrfs' || source === undefined) continue;
      const inside = point === '/' || real === point || real.startsWith(point + '/');
      if (inside && (best === undefined || point.length >= best.point.length)) best = { point, source };
    }
  } catch {
    // no mountinfo: name the path alone
  }
  return best === undefined
    ? `the BTRFS filesystem holding ${real}`
    : `${best.source} mounted at ${best.point}`;
}

/** What the LXC path's storage offers: one statfs, and on BTRFS one `btrfs qgroup show`. */
export async function rootfsStorage(lxcpath: string): Promise<RootfsStorage> {
  if (!onBtrfs(lxcpath)) return { kind: 'directory' };
  const filesystem = filesystemOf(lxcpath);
  try {
    await tool('btrfs', ['qgroup', 'show', '--raw', existing(lxcpath)]);
    return { kind: 'btrfs', quotas: true, filesystem };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return {
      kind: 'btrfs',
      quotas: false,
      filesystem,
      why: /not enabled/i.test(message) ? 'quotas are not enabled' : `its quotas cannot be read (${message})`,
    };
  }
}

/** GiB of a `[storage:]GiB` rootfs value. */
export function rootfsGiB(value: string): number {
  return Number(value.replace(/^.*:/, ''));
}

/** A new empty subvolume at path (its parent exists). */
export async function createSubvolume(path: string): Promise<void> {
  await tool('btrfs', ['subvolume', 'create', path]);
}

/** The subvolume's qgroup limit on referenced bytes: `size` GiB, or none. */
export async function setLimit(path: string, size: string | undefined): Promise<void> {
  await tool('btrfs', ['qgroup', 'limit', size === undefined ? 'none' : `${rootfsGiB(size)}G`, path]);
}

/**
 * Deletes the subvolume at path and its qgroup (`btrfs subvolume delete` leaves a stale one behind).
 * Returns a warning when the qgroup could not be removed (the subvolume is gone either way).
 */
export async function deleteSubvolume(path: string): Promise<string | undefined> {
  const { stdout } = await tool('btrfs', ['inspect-internal', 'rootid', path]);
  const id = stdout.trim();
  const parent = dirname(path);
  await tool('btrfs', ['subvolume', 'delete', '--commit-after', path]);
  if (!/^\d+$/.test(id)) return undefined;
  try {
    await tool('btrfs', ['qgroup', 'destroy', `0/${id}`, parent]);
  } catch (e) {
    // quotas off (no qgroup to remove), or the cleaner has not dropped the subvolume yet
    if (/not enabled/i.test(e instanceof Error ? e.message : String(e))) return undefined;
    return `the qgroup 0/${id} of ${path} was left behind: ${e instanceof Error ? e.message : String(e)}`;
  }
  return undefined;
}

/**
 * Replaces the recorded size of each container whose rootfs is a subvolume under a BTRFS LXC path by
 * the limit in force (one `btrfs qgroup show` for all of them): a limit lost out of band, or quotas
 * turned off, shows in a plan and in drift. The recorded value is kept where it matches.
 */
export async function readLimits(lxcpath: string, specs: { id: string; rootfs?: string }[]): Promise<void> {
  if (!specs.some((c) => c.rootfs !== undefined) || !onBtrfs(lxcpath)) return;
  const sized = specs.filter((c) => c.rootfs !== undefined && isSubvolume(join(lxcpath, c.id, 'rootfs')));
  if (sized.length === 0) return;
  const limits = new Map<string, number | null>();
  try {
    const { stdout } = await tool('btrfs', ['qgroup', 'show', '-re', '--raw', lxcpath]);
    for (const line of stdout.split('\n').slice(2)) {
      // qgroupid rfer excl max_rfer max_excl path (the path from the filesystem's top)
      const [, , , maxRfer, , path] = line.trim().split(/\s+/);
      if (path === undefined || maxRfer === undefined) continue;
      limits.set(path, /^\d+$/.test(maxRfer) ? Number(maxRfer) : null);
    }
  } catch {
    // quotas off (or unreadable): nothing bounds these rootfs
  }
  for (const c of sized) {
    const key = [...limits.keys()].find((p) => p === `${c.id}/rootfs` || p.endsWith(`/${c.id}/rootfs`));
    const max = key === undefined ? null : (limits.get(key) ?? null);
    if (max === null) delete c.rootfs;
    else if (c.rootfs === undefined || max !== rootfsGiB(c.rootfs) * GIB) c.rootfs = String(max / GIB);
  }
}
