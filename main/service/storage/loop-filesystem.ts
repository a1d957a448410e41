// A real filesystem in an image file, loop-mounted: how the tests and the bench get a BTRFS (or a
// small, fillable ext4) on a machine whose own disks are something else. Needs root, losetup and
// the mkfs for the type. Unmounts and detaches exactly the device it attached.

import { execFileSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether a loop filesystem of this type can be made here, or why not. */
export function loopFilesystemSupport(type: 'btrfs' | 'ext4'): { ok: true } | { ok: false; reason: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root (losetup, mount)' };
  for (const [command, args] of [
    [`mkfs.${type}`, ['-V']],
    ['losetup', ['--version']],
    ...(type === 'btrfs' ? [['btrfs', ['--version']] as [string, string[]]] : []),
  ] as Array<[string, string[]]>) {
    try {
      execFileSync(command, args, { stdio: 'ignore' });
    } catch {
      return {
        ok: false,
        reason: `${command} is not installed${type === 'btrfs' ? ' (apt-get install btrfs-progs)' : ''}`,
      };
    }
  }
  return { ok: true };
}

/** A mounted image; `close()` unmounts, detaches and deletes it. */
export class LoopFilesystem {
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly device: string,
    readonly mountPoint: string,
  ) {}

  /** Makes a `sizeMiB` image of `type`, attaches it to a free loop device and mounts it. */
  static create(type: 'btrfs' | 'ext4', sizeMiB: number, mountOptions: string[] = []): LoopFilesystem {
    const dir = mkdtempSync(join(tmpdir(), `opdbus-${type}-`));
    const image = join(dir, 'image');
    const mountPoint = join(dir, 'mnt');
    let device = '';
    try {
      writeFileSync(image, '');
      truncateSync(image, sizeMiB * 1024 * 1024);
      execFileSync(`mkfs.${type}`, type === 'btrfs' ? ['-q', image] : ['-q', '-F', image], { stdio: 'pipe' });
      device = execFileSync('losetup', ['-f', '--show', image], { encoding: 'utf8' }).trim();
      mkdirSync(mountPoint);
      execFileSync(
        'mount',
        [...(mountOptions.length > 0 ? ['-o', mountOptions.join(',')] : []), device, mountPoint],
        {
          stdio: 'pipe',
        },
      );
      return new LoopFilesystem(dir, device, mountPoint);
    } catch (e) {
      if (device !== '') execFileSync('losetup', ['-d', device], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Writes `name` at the top of the filesystem until ENOSPC, in 4 MiB then 4 KiB pieces so no gap is left. */
  fill(name: string): string {
    const file = join(this.mountPoint, name);
    const fd = openSync(file, 'w');
    try {
      for (const size of [4 * 1024 * 1024, 4096]) {
        const chunk = Buffer.alloc(size, 0x5a);
        try {
          for (;;) writeSync(fd, chunk);
        } catch (e) {
          if ((e as { code?: unknown }).code !== 'ENOSPC') throw e;
        }
      }
    } finally {
      closeSync(fd);
    }
    execFileSync('sync', ['-f', file]);
    return file;
  }

  /** Remounts with other options (e.g. "ro", "rw"). */
  remount(options: string): void {
    execFileSync('mount', ['-o', `remount,${options}`, this.mountPoint], { stdio: 'pipe' });
  }

  /** Unmounts (lazily if busy), detaches the loop device and removes the image; safe to call twice. */
  close(): void {
    // a second detach could hit a device someone else attached since under the same name
    if (this.closed) return;
    this.closed = true;
    try {
      execFileSync('umount', [this.mountPoint], { stdio: 'pipe' });
    } catch {
      try {
        execFileSync('umount', ['-l', this.mountPoint], { stdio: 'pipe' });
      } catch {
        // not mounted any more
      }
    }
    try {
      execFileSync('losetup', ['-d', this.device], { stdio: 'pipe' });
    } catch {
      // already detached
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
