import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeAvailability } from '../../../native/index.js';
import { BtrfsCommand } from './btrfs.js';
import { StorageError } from './errors.js';
import { prepareDataDir } from './layout.js';
import { LoopFilesystem, loopFilesystemSupport } from './loop-filesystem.js';
import { PluginStateSnapshots } from './snapshots.js';

const support = loopFilesystemSupport('btrfs');
const native = nativeAvailability();

/** `btrfs subvolume list` paths, relative to the filesystem's top (an independent reader). */
function subvolumeList(mountPoint: string, flags: string[] = []): string[] {
  // a deleted subvolume stays listed until the transaction commits
  execFileSync('btrfs', ['filesystem', 'sync', mountPoint], { stdio: 'ignore' });
  const out = execFileSync('btrfs', ['subvolume', 'list', ...flags, mountPoint], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => /\bpath (.+)$/.exec(l)?.[1])
    .filter((p): p is string => p !== undefined);
}

function property(path: string): string {
  return execFileSync('btrfs', ['property', 'get', path, 'compression'], { encoding: 'utf8' }).trim();
}

function lsattr(path: string, dir = true): string {
  return execFileSync('lsattr', [...(dir ? ['-d'] : []), path], { encoding: 'utf8' }).split(/\s/)[0] ?? '';
}

function errorOf(f: () => unknown): StorageError {
  try {
    f();
  } catch (e) {
    if (e instanceof StorageError) return e;
    throw e;
  }
  throw new Error('expected a StorageError');
}

describe.skipIf(!support.ok)(
  `data dir on a real BTRFS, loop-mounted${support.ok ? '' : ` (skipped: ${support.reason})`}; no-CoW through ${native.available ? 'the addon' : 'chattr'}`,
  () => {
    let fs: LoopFilesystem | undefined;
    let mnt = '';
    let dataDir = '';

    beforeAll(() => {
      fs = LoopFilesystem.create('btrfs', 512);
      mnt = fs.mountPoint;
      dataDir = join(mnt, 'op-dbus');
    });
    afterAll(() => fs?.close());

    it('makes cache, audit, payloads, snapshots and plugins subvolumes, as `btrfs subvolume list` shows', () => {
      const layout = prepareDataDir(dataDir);
      expect(layout.mode).toBe('btrfs');
      expect(layout.filesystem).toMatchObject({ type: 'btrfs', btrfs: true, readOnly: false });
      expect(layout.filesystem.mount?.mountPoint).toBe(mnt);
      expect(subvolumeList(mnt).sort()).toEqual(
        ['op-dbus/audit', 'op-dbus/cache', 'op-dbus/payloads', 'op-dbus/plugins', 'op-dbus/snapshots'].sort(),
      );
      for (const part of Object.values(layout.parts))
        expect(part).toMatchObject({ kind: 'subvolume', created: true });
      expect(readdirSync(dataDir).sort()).toEqual(['audit', 'cache', 'payloads', 'plugins', 'snapshots']);
    });

    it('sets zstd on payloads and cache only', () => {
      expect(property(join(dataDir, 'payloads'))).toBe('compression=zstd');
      expect(property(join(dataDir, 'cache'))).toBe('compression=zstd');
      for (const part of ['audit', 'plugins', 'snapshots']) expect(property(join(dataDir, part))).toBe('');
    });

    it('makes audit/ no-CoW before any file exists, so the SQLite files inherit it', () => {
      expect(lsattr(join(dataDir, 'audit'))).toContain('C');
      for (const part of ['cache', 'payloads', 'plugins', 'snapshots']) {
        expect(lsattr(join(dataDir, part))).not.toContain('C');
      }
      const db = new Database(join(dataDir, 'audit', 'audit.sqlite'));
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
      expect(lsattr(join(dataDir, 'audit', 'audit.sqlite'), false)).toContain('C');
      expect(lsattr(join(dataDir, 'audit', 'audit.sqlite-wal'), false)).toContain('C');
      db.close();
    });

    it('is idempotent: a second prepare creates nothing and reports what is there', () => {
      const again = prepareDataDir(dataDir);
      expect(Object.values(again.parts).every((p) => !p.created)).toBe(true);
      expect(again.parts.audit).toMatchObject({ kind: 'subvolume', noCow: true, compression: null });
      expect(again.parts.payloads).toMatchObject({ kind: 'subvolume', noCow: false, compression: 'zstd' });
      expect(again.warnings).toEqual([]);
    });

    it('says when the zstd level asked for is not the one in effect (the property carries no level)', () => {
      const layout = prepareDataDir(dataDir, { compressionLevel: 9 });
      expect(layout.compression).toEqual({ algorithm: 'zstd', requestedLevel: 9, levelInEffect: 3 });
      expect(layout.warnings.join('\n')).toMatch(
        /zstd level 9 was asked for.*gives level 3.*compress=zstd:9/,
      );
      expect(() => prepareDataDir(dataDir, { compressionLevel: 22 })).toThrow(/from 1 to 15/);
    });

    it('a snapshot taken before an apply and restored brings plugin state back, without the audit log in it', () => {
      const plugins = join(dataDir, 'plugins');
      mkdirSync(join(plugins, 'hostname'), { recursive: true });
      writeFileSync(join(plugins, 'hostname', 'state.json'), '{"hostname":"before"}');
      const store = new PluginStateSnapshots(prepareDataDir(dataDir));
      const snap = store.take('pre-apply plan 1a2b');
      expect(snap.label).toBe('pre-apply-plan-1a2b');
      expect(store.list().map((s) => s.id)).toEqual([snap.id]);
      expect(subvolumeList(mnt, ['-s'])).toEqual([`op-dbus/snapshots/${snap.id}`]);
      // read-only: a snapshot cannot be changed after the fact
      expect(() => writeFileSync(join(snap.path, 'x'), '')).toThrow(/EROFS|read-only/);

      writeFileSync(join(plugins, 'hostname', 'state.json'), '{"hostname":"after"}');
      writeFileSync(join(plugins, 'hostname', 'new-file'), 'added by the apply');
      store.restore(snap.id);
      expect(readFileSync(join(plugins, 'hostname', 'state.json'), 'utf8')).toBe('{"hostname":"before"}');
      expect(existsSync(join(plugins, 'hostname', 'new-file'))).toBe(false);
      expect(subvolumeList(mnt)).toContain('op-dbus/plugins');
      expect(readdirSync(dataDir).filter((e) => e.startsWith('.'))).toEqual([]);

      // the audit log is in no snapshot: not in the snapshot's tree, and no snapshot of audit/ exists
      const inSnapshot = readdirSync(snap.path, { recursive: true }).map(String);
      expect(inSnapshot.sort()).toEqual(['hostname', 'hostname/state.json']);
      for (const path of subvolumeList(mnt, ['-s'])) expect(path).not.toMatch(/audit/);
      expect(existsSync(join(dataDir, 'audit', 'audit.sqlite'))).toBe(true);
    });

    it('lists snapshots oldest first, prunes, and names the missing one on restore', () => {
      const store = new PluginStateSnapshots(prepareDataDir(dataDir));
      const t = Date.parse('2030-01-01T00:00:00Z');
      const a = store.take('a', new Date(t));
      const b = store.take('b', new Date(t));
      const c = store.take('c', new Date(t + 1000));
      const ids = store.list().map((s) => s.id);
      expect(ids.slice(-3)).toEqual([a.id, b.id, c.id]);
      expect(b.id).toBe('20300101T000000000Z.001-b');
      expect(store.prune(2)).toEqual(ids.slice(0, -2));
      expect(store.list().map((s) => s.id)).toEqual([b.id, c.id]);
      // plugins/ itself is listed with -s after the restore above: it is a (writable) snapshot now
      expect(subvolumeList(mnt, ['-s']).filter((p) => p.startsWith('op-dbus/snapshots/'))).toEqual([
        `op-dbus/snapshots/${b.id}`,
        `op-dbus/snapshots/${c.id}`,
      ]);
      const e = errorOf(() => store.restore('nope'));
      expect(e.reason).toBe('SnapshotNotFound');
      expect(e.message).toContain(`there are: ${b.id}, ${c.id}`);
    });

    it('puts plugins/ back when a restore was interrupted between its two renames', () => {
      const plugins = join(dataDir, 'plugins');
      writeFileSync(join(plugins, 'marker'), 'kept');
      execFileSync('mv', [plugins, join(dataDir, '.plugins.replaced-999999')]);
      execFileSync('btrfs', ['subvolume', 'create', join(dataDir, '.plugins.partial-999999')], {
        stdio: 'ignore',
      });
      prepareDataDir(dataDir);
      expect(readFileSync(join(plugins, 'marker'), 'utf8')).toBe('kept');
      expect(readdirSync(dataDir).filter((e) => e.startsWith('.'))).toEqual([]);
      expect(subvolumeList(mnt).filter((p) => p.includes('.plugins'))).toEqual([]);
    });

    it('a failure half-way removes the subvolumes already made (nothing half-written)', () => {
      class FailingOnPayloads extends BtrfsCommand {
        override setCompression(path: string, algorithm: string): void {
          if (path.includes('.payloads'))
            throw new StorageError('NoSpace', 'injected: no space for payloads/', path);
          super.setCompression(path, algorithm);
        }
      }
      const other = join(mnt, 'half', 'data');
      const e = errorOf(() => prepareDataDir(other, { btrfs: new FailingOnPayloads() }));
      expect(e.message).toBe('injected: no space for payloads/');
      expect(existsSync(join(mnt, 'half'))).toBe(false);
      expect(subvolumeList(mnt).filter((p) => p.startsWith('half'))).toEqual([]);
    });

    it('refuses a read-only filesystem with a clear error and creates nothing', () => {
      const other = join(mnt, 'ro-data');
      fs?.remount('ro');
      try {
        const e = errorOf(() => prepareDataDir(other));
        expect(e.reason).toBe('ReadOnly');
        expect(e.code).toBe('InvalidArgument');
        expect(e.message).toBe(
          `the data dir ${other} is on a read-only filesystem: ${mnt} (${fs?.device}, btrfs) is mounted read-only; remount it read-write or choose another data dir`,
        );
        // an existing layout on a read-only filesystem is refused too: the core could not write its log
        expect(errorOf(() => prepareDataDir(dataDir)).reason).toBe('ReadOnly');
      } finally {
        fs?.remount('rw');
      }
      expect(existsSync(other)).toBe(false);
    });

    it('refuses a full filesystem with a clear error and creates nothing', () => {
      const filler = join(mnt, 'filler');
      const before = subvolumeList(mnt).sort();
      try {
        fs?.fill('filler');
        const other = join(mnt, 'full-data');
        const e = errorOf(() => prepareDataDir(other));
        expect(e.reason).toBe('NoSpace');
        expect(e.message).toMatch(
          new RegExp(`^the (filesystem of the )?data dir ${other} .*(full|no space)`),
        );
        expect(existsSync(other)).toBe(false);
        // past the free-space check (minFreeBytes 0), the write probe finds out before anything is made
        const probe = errorOf(() => prepareDataDir(other, { minFreeBytes: 0 }));
        expect(probe.reason).toBe('NoSpace');
        expect(probe.message).toMatch(/cannot be written: no space left/);
        expect(existsSync(other)).toBe(false);
      } finally {
        rmSync(filler, { force: true });
        execFileSync('sync');
      }
      expect(
        subvolumeList(mnt)
          .filter((p) => !p.startsWith('full-data'))
          .sort(),
      ).toEqual(before);
      expect(readdirSync(mnt).filter((e) => e.includes('.partial-'))).toEqual([]);
    });
  },
);
