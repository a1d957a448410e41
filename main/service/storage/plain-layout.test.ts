import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from './errors.js';
import {
  BTRFS_MAGIC,
  btrfsMountCompressionLevel,
  filesystemOf,
  mountOf,
  parseMountInfo,
} from './filesystem.js';
import { prepareDataDir } from './layout.js';
import { LoopFilesystem, loopFilesystemSupport } from './loop-filesystem.js';
import { PluginStateSnapshots } from './snapshots.js';

function errorOf(f: () => unknown): StorageError {
  try {
    f();
  } catch (e) {
    if (e instanceof StorageError) return e;
    throw e;
  }
  throw new Error('expected a StorageError');
}

const MOUNTINFO = [
  '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
  '40 22 0:39 / /srv/data\\040dir rw,relatime shared:20 - btrfs /dev/loop0 rw,compress=zstd:9,space_cache=v2,subvolid=5,subvol=/',
  '41 40 0:40 /@ro /srv/data\\040dir/ro ro,relatime - btrfs /dev/loop1 rw,subvolid=256,subvol=/@ro',
  '42 22 0:41 / /srv/data rw - tmpfs tmpfs rw',
  'garbage line',
].join('\n');

describe('mountinfo', () => {
  it('parses fields, octal escapes and optional fields', () => {
    const mounts = parseMountInfo(MOUNTINFO);
    expect(mounts).toHaveLength(4);
    expect(mounts[1]).toEqual({
      root: '/',
      mountPoint: '/srv/data dir',
      fsType: 'btrfs',
      source: '/dev/loop0',
      mountOptions: ['rw', 'relatime'],
      superOptions: ['rw', 'compress=zstd:9', 'space_cache=v2', 'subvolid=5', 'subvol=/'],
    });
  });

  it('finds the mount holding a path: the longest mount point, never a mere name prefix', () => {
    const mounts = parseMountInfo(MOUNTINFO);
    expect(mountOf('/srv/data dir/op-dbus', mounts)?.source).toBe('/dev/loop0');
    expect(mountOf('/srv/data dir/ro/x', mounts)?.mountOptions).toContain('ro');
    expect(mountOf('/srv/datadir', mounts)?.fsType).toBe('ext4');
    expect(mountOf('/srv/data', mounts)?.fsType).toBe('tmpfs');
  });

  it('reads the zstd level the kernel applies from the mount options', () => {
    const mounts = parseMountInfo(MOUNTINFO);
    expect(btrfsMountCompressionLevel(mounts[1] ?? null)).toBe(9);
    expect(btrfsMountCompressionLevel(mounts[2] ?? null)).toBe(3);
  });

  it('describes this machine’s /tmp from statfs and mountinfo', () => {
    const info = filesystemOf(join(tmpdir(), 'does-not-exist-yet', 'deeper'));
    expect(info.path).toBe(tmpdir());
    expect(info.btrfs).toBe(info.magic === BTRFS_MAGIC);
    expect(info.mount).not.toBeNull();
    expect(info.availableBytes).toBeGreaterThan(0);
  });
});

describe.skipIf(filesystemOf(tmpdir()).btrfs)(
  'data dir elsewhere than BTRFS: plain directories, same layout',
  () => {
    let root = '';
    beforeAll(() => {
      root = mkdtempSync(join(tmpdir(), 'opdbus-storage-'));
    });
    afterAll(() => rmSync(root, { recursive: true, force: true }));

    it('makes the same five directories and no subvolume or attribute', () => {
      const dataDir = join(root, 'a', 'b', 'data');
      const layout = prepareDataDir(dataDir);
      expect(layout.mode).toBe('plain');
      expect(layout.compression).toBeNull();
      expect(readdirSync(dataDir).sort()).toEqual(['audit', 'cache', 'payloads', 'plugins', 'snapshots']);
      for (const part of Object.values(layout.parts)) {
        expect(part).toMatchObject({ kind: 'directory', compression: null, noCow: null, created: true });
      }
      expect(prepareDataDir(dataDir).parts.audit.created).toBe(false);
    });

    it('snapshots by copy, lists them and restores plugin state', () => {
      const dataDir = join(root, 'snap');
      const store = new PluginStateSnapshots(prepareDataDir(dataDir));
      mkdirSync(join(dataDir, 'plugins', 'p'));
      writeFileSync(join(dataDir, 'plugins', 'p', 'state'), 'one');
      writeFileSync(join(dataDir, 'audit', 'audit.sqlite'), 'log');
      const snap = store.take('before apply');
      writeFileSync(join(dataDir, 'plugins', 'p', 'state'), 'two');
      store.restore(snap.id);
      expect(readFileSync(join(dataDir, 'plugins', 'p', 'state'), 'utf8')).toBe('one');
      expect(readdirSync(snap.path, { recursive: true }).map(String).sort()).toEqual(['p', 'p/state']);
      expect(store.list().map((s) => s.label)).toEqual(['before-apply']);
      expect(readdirSync(dataDir).filter((e) => e.startsWith('.'))).toEqual([]);
    });

    it('refuses a data dir that is a file, or with a part in the way', () => {
      const file = join(root, 'file');
      writeFileSync(file, '');
      expect(errorOf(() => prepareDataDir(file)).reason).toBe('NotADirectory');
      const dataDir = join(root, 'conflict');
      mkdirSync(dataDir);
      writeFileSync(join(dataDir, 'plugins'), '');
      const e = errorOf(() => prepareDataDir(dataDir));
      expect(e.reason).toBe('Conflict');
      expect(readdirSync(dataDir)).toEqual(['plugins']);
    });
  },
);

const ext4 = loopFilesystemSupport('ext4');

describe.skipIf(!ext4.ok)(
  `data dir on a small full ext4, loop-mounted${ext4.ok ? '' : ` (skipped: ${ext4.reason})`}`,
  () => {
    let fs: LoopFilesystem | undefined;
    beforeAll(() => {
      fs = LoopFilesystem.create('ext4', 16);
    });
    afterAll(() => fs?.close());

    it('refuses with NoSpace and writes nothing, also past the free-space check', () => {
      const mnt = fs?.mountPoint as string;
      const entries = readdirSync(mnt).sort();
      fs?.fill('filler');
      const dataDir = join(mnt, 'data');
      const e = errorOf(() => prepareDataDir(dataDir));
      expect(e.reason).toBe('NoSpace');
      expect(e.message).toMatch(
        /^the filesystem of the data dir .*\/data is full: \d+ bytes available on .* \(\/dev\/loop\d+, ext4\), at least 16777216 needed$/,
      );
      const probe = errorOf(() => prepareDataDir(dataDir, { minFreeBytes: 0 }));
      expect(probe.reason).toBe('NoSpace');
      expect(probe.message).toMatch(/cannot be written: no space left/);
      expect(existsSync(dataDir)).toBe(false);
      expect(readdirSync(mnt).sort()).toEqual([...entries, 'filler'].sort());
    });

    it('refuses a read-only remount with ReadOnly and writes nothing', () => {
      const mnt = fs?.mountPoint as string;
      rmSync(join(mnt, 'filler'), { force: true });
      fs?.remount('ro');
      try {
        const e = errorOf(() => prepareDataDir(join(mnt, 'data')));
        expect(e.reason).toBe('ReadOnly');
        expect(e.message).toContain('is mounted read-only');
      } finally {
        fs?.remount('rw');
      }
      expect(existsSync(join(mnt, 'data'))).toBe(false);
    });
  },
);
