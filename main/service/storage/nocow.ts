// The no-CoW attribute ('C' in lsattr, FS_NOCOW_FL) for the SQLite directory on BTRFS: copy-on-write
// under a database that rewrites pages in place fragments it badly. It only takes effect on files
// created after it is set, so it goes on the empty directory, which new files inherit it from.
// Through the native addon's FS_IOC_SETFLAGS; without the addon, chattr/lsattr (e2fsprogs, which
// every Debian has) do the same ioctl.

import { execFileSync } from 'node:child_process';
import { INODE_FLAGS, inodeFlags, nativeAvailability, setInodeFlags } from '../../../native/index.js';

/** How the flag was set or read: the addon's ioctl or the e2fsprogs commands. */
export type NoCowMethod = 'ioctl' | 'chattr';

/** Sets FS_NOCOW_FL on `path` and returns whether it reads back as set, and how. */
export function setNoCow(path: string): { set: boolean; method: NoCowMethod } {
  if (nativeAvailability().available) {
    const flags = setInodeFlags(path, { set: INODE_FLAGS.noCow });
    return { set: (flags & INODE_FLAGS.noCow) !== 0, method: 'ioctl' };
  }
  execFileSync('chattr', ['+C', path], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { set: hasNoCow(path), method: 'chattr' };
}

/** Whether FS_NOCOW_FL is set on `path`. */
export function hasNoCow(path: string): boolean {
  if (nativeAvailability().available) return (inodeFlags(path) & INODE_FLAGS.noCow) !== 0;
  const out = execFileSync('lsattr', ['-d', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return (out.split(/\s/)[0] ?? '').includes('C');
}
