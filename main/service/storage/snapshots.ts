// Snapshots of plugin state (<dataDir>/plugins) taken before each apply, for rollback. On BTRFS a
// read-only subvolume snapshot (instant, shares blocks); elsewhere a copy made under a temporary
// name and renamed into place. Only plugins/ is snapshotted: the audit log, its payloads and the
// cache are other subvolumes (or directories outside plugins/), so no snapshot contains them.

import { cpSync, existsSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { BtrfsCommand } from './btrfs.js';
import { StorageError, storageErrorFrom } from './errors.js';
import { PARTIAL_MARK, REPLACED_MARK, removePart, type StorageLayout } from './layout.js';

/** One snapshot of plugins/. */
export interface PluginSnapshot {
  /** The directory name under snapshots/: `<UTC time>.<seq>-<label>`, sorts by time. */
  id: string;
  path: string;
  takenAt: string;
  label: string;
}

const ID_PATTERN = /^(\d{8}T\d{9}Z)\.(\d{3})-([a-z0-9._-]*)$/;

/** Labels become part of a directory name: lower-case letters, digits, dot, dash, underscore. */
function labelSlug(label: string): string {
  return label
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[-.]+/, '')
    .slice(0, 64);
}

function stampOf(date: Date): string {
  return date.toISOString().replace(/[-:.]/g, '');
}

function parseId(id: string, dir: string): PluginSnapshot | null {
  const m = ID_PATTERN.exec(id);
  if (m === null) return null;
  const s = m[1] as string;
  const takenAt = `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}.${s.slice(15, 18)}Z`;
  return { id, path: join(dir, id), takenAt, label: m[3] as string };
}

/** Takes, lists, restores and removes snapshots of plugins/ in a prepared data dir. */
export class PluginStateSnapshots {
  private readonly plugins: string;
  private readonly dir: string;

  constructor(
    private readonly layout: Pick<StorageLayout, 'dataDir' | 'mode'>,
    private readonly btrfs = new BtrfsCommand(),
  ) {
    this.plugins = join(layout.dataDir, 'plugins');
    this.dir = join(layout.dataDir, 'snapshots');
  }

  /** Snapshots plugins/ now (call before an apply); the label says why (e.g. the plan hash). */
  take(label: string, now = new Date()): PluginSnapshot {
    const stamp = stampOf(now);
    const slug = labelSlug(label);
    // within one millisecond, a sequence number keeps the names in the order taken
    const seq = this.list().filter((s) => s.id.startsWith(`${stamp}.`)).length;
    const id = `${stamp}.${String(seq).padStart(3, '0')}-${slug}`;
    const target = join(this.dir, id);
    try {
      if (this.layout.mode === 'btrfs') {
        this.btrfs.snapshot(this.plugins, target); // atomic: there is no half-made snapshot to see
      } else {
        const temp = join(this.dir, `.${id}${PARTIAL_MARK}${process.pid}`);
        try {
          cpSync(this.plugins, temp, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
          renameSync(temp, target);
        } catch (e) {
          removePart(temp, 'plain', this.btrfs);
          throw e;
        }
      }
    } catch (e) {
      throw storageErrorFrom(e, `snapshot of ${this.plugins}`, target);
    }
    return parseId(id, this.dir) as PluginSnapshot;
  }

  /** The snapshots, oldest first. */
  list(): PluginSnapshot[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .map((name) => parseId(name, this.dir))
      .filter((s): s is PluginSnapshot => s !== null)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * Puts plugins/ back to the snapshot `id`. The copy is made beside plugins/ first and swapped in
   * by two renames; plugin code must not hold files in plugins/ open meanwhile (it would keep
   * writing to the replaced tree).
   */
  restore(id: string): void {
    const snapshot = this.find(id);
    const data = this.layout.dataDir;
    const staging = join(data, `.plugins${PARTIAL_MARK}${process.pid}`);
    const aside = join(data, `.plugins${REPLACED_MARK}${process.pid}`);
    try {
      if (this.layout.mode === 'btrfs') this.btrfs.snapshot(snapshot.path, staging, true);
      else
        cpSync(snapshot.path, staging, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
    } catch (e) {
      removePart(staging, this.layout.mode, this.btrfs);
      throw storageErrorFrom(e, `restoring plugin state from snapshot ${id}`, staging);
    }
    // A crash between these renames leaves `aside` without plugins/: prepareDataDir moves it back.
    renameSync(this.plugins, aside);
    try {
      renameSync(staging, this.plugins);
    } catch (e) {
      renameSync(aside, this.plugins);
      removePart(staging, this.layout.mode, this.btrfs);
      throw storageErrorFrom(e, `restoring plugin state from snapshot ${id}`, this.plugins);
    }
    removePart(aside, this.layout.mode, this.btrfs);
  }

  /** Deletes the snapshot `id`. */
  remove(id: string): void {
    const snapshot = this.find(id);
    try {
      if (this.layout.mode === 'btrfs') this.btrfs.deleteSubvolume(snapshot.path);
      else removePart(snapshot.path, 'plain', this.btrfs);
    } catch (e) {
      throw storageErrorFrom(e, `deleting snapshot ${id}`, snapshot.path);
    }
  }

  /** Deletes all but the newest `keep` snapshots; returns the ids deleted. */
  prune(keep: number): string[] {
    const all = this.list();
    const old = all.slice(0, Math.max(0, all.length - keep));
    for (const s of old) this.remove(s.id);
    return old.map((s) => s.id);
  }

  private find(id: string): PluginSnapshot {
    const snapshot = this.list().find((s) => s.id === id);
    if (snapshot === undefined) {
      const known = this.list().map((s) => s.id);
      throw new StorageError(
        'SnapshotNotFound',
        `no plugin-state snapshot ${JSON.stringify(id)} in ${this.dir} (there are: ${known.length === 0 ? 'none' : known.join(', ')})`,
        join(this.dir, id),
      );
    }
    return snapshot;
  }
}
