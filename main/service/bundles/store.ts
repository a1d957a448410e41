// Installed bundles in the data dir (issue 18):
//   bundles/store/<name>/<hash>/   one installed version: plugin/ (its files), bundle.json, bundle.sig, installed.json
//   bundles/active/<name>          symlink to ../store/<name>/<hash>: the version the core loads
//   bundles/previous/<name>        symlink to the version before it: what rollback switches back to
// On BTRFS each version is a subvolume written under a temporary name, made read-only (the `ro`
// property) and only then renamed to its hash; elsewhere the same with a plain directory whose
// files are made read-only. Switching is one rename(2) of a new symlink over active/<name>, so
// at every instant exactly one complete version is active. A kill -9 leaves at most a temporary
// version or link, which recover() removes at the next start, with any version neither link names.

import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { OpError } from '../../common/contract/index.js';
import { BtrfsCommand, isSubvolumeRoot } from '../storage/btrfs.js';
import { MANIFEST_MEMBER, SIGNATURE_MEMBER } from '../../common/bundles/format.js';
import type { VerifiedBundle } from './verify.js';
import { fsyncDir, writeDurably } from '../storage/durable-file.js';

/** Points where a test can halt the core to kill -9 it (OP_DBUS_TEST_BUNDLE_HALT_AT). */
export const BUNDLE_HALT_POINTS = [
  /** install: every file written into the temporary version, not yet sealed */
  'bundle-after-files',
  /** install: the version sealed under its hash, not yet active */
  'bundle-after-seal',
  /** switch (install or rollback): previous/<name> moved, active/<name> not yet */
  'bundle-after-previous',
  /** switch: active/<name> moved, the registry not yet reloaded */
  'bundle-after-switch',
] as const;
export type BundleHaltPoint = (typeof BUNDLE_HALT_POINTS)[number];

/** Reads OP_DBUS_TEST_BUNDLE_HALT_AT, refusing unknown names. */
export function bundleHaltFromEnv(value: string | undefined): BundleHaltPoint | undefined {
  if (value === undefined || value === '') return undefined;
  const known = BUNDLE_HALT_POINTS.find((p) => p === value);
  if (known === undefined) {
    throw new OpError(
      'InvalidArgument',
      `OP_DBUS_TEST_BUNDLE_HALT_AT must be one of ${BUNDLE_HALT_POINTS.join(', ')}, not "${value}"`,
    );
  }
  return known;
}

const PARTIAL = '.partial-';
const NEW_LINK = '.new-';
const HASH = /^[0-9a-f]{64}$/;

/** What installed.json of a version says (written before it is sealed). */
const Installed = z.strictObject({
  name: z.string(),
  version: z.string(),
  hash: z.string(),
  signer: z.string(),
  signerKey: z.string(),
  installedAt: z.string(),
  installedBy: z.string(),
  files: z.number().int(),
  bytes: z.number().int(),
});
export type InstalledVersion = z.infer<typeof Installed>;

/** One version as `plugin show` reports it. */
export interface VersionInfo extends InstalledVersion {
  path: string;
  kind: 'subvolume' | 'directory';
  readOnly: boolean;
  active: boolean;
  previous: boolean;
}

/** An installed plugin's versions. */
export interface BundleInfo {
  name: string;
  /** btrfs: each version a read-only subvolume; plain: a read-only directory. */
  storage: 'btrfs' | 'plain';
  active: string | null;
  previous: string | null;
  versions: VersionInfo[];
}

export interface BundleStoreOptions {
  /** `<dataDir>/bundles`. */
  root: string;
  mode: 'btrfs' | 'plain';
  btrfs?: BtrfsCommand;
  haltAt?: BundleHaltPoint | undefined;
  /** Where the halt marker is written (the data dir, as the engine's halt points do). */
  haltMarkerDir?: string;
}

/** The installed bundles: install, switch, roll back, remove, and what is there. */
export class BundleStore {
  readonly root: string;
  readonly mode: 'btrfs' | 'plain';
  private readonly btrfs: BtrfsCommand;
  private readonly store: string;
  private readonly active: string;
  private readonly previous: string;

  constructor(private readonly o: BundleStoreOptions) {
    this.root = o.root;
    this.mode = o.mode;
    this.btrfs = o.btrfs ?? new BtrfsCommand();
    this.store = join(o.root, 'store');
    this.active = join(o.root, 'active');
    this.previous = join(o.root, 'previous');
    for (const d of [o.root, this.store, this.active, this.previous])
      mkdirSync(d, { recursive: true, mode: 0o755 });
  }

  /**
   * At start-up: removes what an interrupted install, switch or remove left (temporary versions
   * and links, versions no link names); returns a line for each thing removed.
   */
  recover(): string[] {
    const done: string[] = [];
    for (const links of [this.active, this.previous]) {
      for (const entry of readdirSync(links)) {
        const path = join(links, entry);
        if (entry.includes(NEW_LINK) || this.linkTarget(links, entry) === undefined) {
          rmSync(path, { force: true });
          done.push(`removed ${path} (an interrupted switch, or a link to no version)`);
        }
      }
    }
    for (const name of readdirSync(this.store)) {
      const dir = join(this.store, name);
      const keep = new Set([this.linkTarget(this.active, name), this.linkTarget(this.previous, name)]);
      for (const entry of readdirSync(dir)) {
        if (keep.has(entry)) continue;
        this.removeVersion(join(dir, entry));
        done.push(
          `removed ${join(dir, entry)} (${entry.includes(PARTIAL) ? 'an interrupted install' : 'a version neither active nor previous'})`,
        );
      }
      if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true, force: true });
    }
    return done;
  }

  /** The plugin directories of the active versions: the installed bundles' discovery source. */
  activePluginDirs(): string[] {
    return this.names().map((name) =>
      join(this.store, name, this.linkTarget(this.active, name) as string, 'plugin'),
    );
  }

  /** Names with an active version, sorted. */
  names(): string[] {
    return readdirSync(this.active)
      .filter((n) => !n.includes(NEW_LINK) && this.linkTarget(this.active, n) !== undefined)
      .sort();
  }

  /** Every plugin with anything installed (active or not), sorted. */
  known(): string[] {
    return readdirSync(this.store)
      .filter((n) => readdirSync(join(this.store, n)).some((e) => HASH.test(e)))
      .sort();
  }

  /** Whether the plugin directory is one of this store's versions. */
  owns(dir: string): boolean {
    return dir.startsWith(`${this.store}/`);
  }

  /**
   * Writes a verified bundle as a new sealed version (unless that hash is installed already) and
   * makes it active; the version active before becomes previous. Returns what was active before.
   */
  async install(
    b: VerifiedBundle,
    installedBy: string,
  ): Promise<{ before: string | null; already: boolean }> {
    const name = b.manifest.plugin.name;
    const dir = join(this.store, name);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const final = join(dir, b.hash);
    const before = this.linkTarget(this.active, name) ?? null;
    if (before === b.hash) return { before, already: true };
    if (!existsSync(final)) {
      const partial = join(dir, `${PARTIAL}${b.hash.slice(0, 16)}-${process.pid}`);
      if (existsSync(partial)) this.removeVersion(partial);
      try {
        if (this.mode === 'btrfs') this.btrfs.createSubvolume(partial);
        else mkdirSync(partial, { mode: 0o755 });
        let bytes = 0;
        for (const [path, data] of b.files) {
          writeDurably(join(partial, 'plugin', path), data);
          bytes += data.length;
        }
        writeDurably(join(partial, MANIFEST_MEMBER), b.manifestBytes);
        writeDurably(join(partial, SIGNATURE_MEMBER), b.signatureBytes);
        const installed: InstalledVersion = {
          name,
          version: b.manifest.plugin.version,
          hash: b.hash,
          signer: b.signer.fingerprint,
          signerKey: b.signer.file,
          installedAt: new Date().toISOString(),
          installedBy,
          files: b.files.size,
          bytes,
        };
        writeDurably(join(partial, 'installed.json'), Buffer.from(`${JSON.stringify(installed, null, 2)}\n`));
        await this.halt('bundle-after-files');
        this.seal(partial);
      } catch (e) {
        this.removeVersion(partial);
        throw e;
      }
      renameSync(partial, final);
      fsyncDir(dir);
      await this.halt('bundle-after-seal');
    }
    await this.switchTo(name, b.hash, before);
    return { before, already: false };
  }

  /** Makes the previous version active again (and the active one previous). Returns [from, to]. */
  async rollback(name: string): Promise<{ from: string; to: string }> {
    const from = this.linkTarget(this.active, name);
    const to = this.linkTarget(this.previous, name);
    if (from === undefined) throw notInstalled(name);
    if (to === undefined) {
      throw new OpError('InvalidArgument', `plugin ${name} has no previous version to roll back to`, {
        plugin: name,
      });
    }
    await this.switchTo(name, to, from);
    return { from, to };
  }

  /** Removes every version of the plugin: first its active link (so it is gone at once), then the rest. */
  remove(name: string): { removed: string[] } {
    const active = this.linkTarget(this.active, name);
    if (active === undefined && !this.known().includes(name)) throw notInstalled(name);
    for (const links of [this.active, this.previous]) {
      if (lstatExists(join(links, name))) unlinkSync(join(links, name));
      fsyncDir(links);
    }
    const dir = join(this.store, name);
    const removed = existsSync(dir) ? readdirSync(dir) : [];
    for (const entry of removed) this.removeVersion(join(dir, entry));
    rmSync(dir, { recursive: true, force: true });
    return { removed: removed.filter((e) => HASH.test(e)) };
  }

  /** The plugin's versions, which is active and which previous, and how they are stored. */
  show(name: string): BundleInfo {
    const dir = join(this.store, name);
    const versions = existsSync(dir) ? readdirSync(dir).filter((e) => HASH.test(e)) : [];
    if (versions.length === 0) throw notInstalled(name);
    const active = this.linkTarget(this.active, name) ?? null;
    const previous = this.linkTarget(this.previous, name) ?? null;
    return {
      name,
      storage: this.mode,
      active,
      previous,
      versions: versions
        .map((hash): VersionInfo => {
          const path = join(dir, hash);
          const installed = Installed.parse(JSON.parse(readFileSync(join(path, 'installed.json'), 'utf8')));
          const subvolume = this.mode === 'btrfs' && isSubvolumeRoot(path);
          return {
            ...installed,
            path,
            kind: subvolume ? 'subvolume' : 'directory',
            readOnly: subvolume ? this.btrfs.isReadOnly(path) : (lstatSync(path).mode & 0o222) === 0,
            active: hash === active,
            previous: hash === previous,
          };
        })
        .sort((a, b) => (a.installedAt < b.installedAt ? 1 : -1)),
    };
  }

  /** previous := before, then active := hash, each by rename(2) of a new symlink; then versions neither names are deleted. */
  private async switchTo(name: string, hash: string, before: string | undefined | null): Promise<void> {
    if (before !== undefined && before !== null && before !== hash) {
      this.link(this.previous, name, before);
      await this.halt('bundle-after-previous');
    }
    this.link(this.active, name, hash);
    await this.halt('bundle-after-switch');
    const keep = new Set([hash, before ?? hash]);
    const dir = join(this.store, name);
    for (const entry of readdirSync(dir)) {
      if (HASH.test(entry) && !keep.has(entry)) this.removeVersion(join(dir, entry));
    }
  }

  private link(links: string, name: string, hash: string): void {
    const temp = join(links, `.${name}${NEW_LINK}${process.pid}`);
    rmSync(temp, { force: true });
    symlinkSync(join('..', 'store', name, hash), temp);
    renameSync(temp, join(links, name));
    fsyncDir(links);
  }

  /** The hash a link in links/ names, if it is a link to an existing version of the same name. */
  private linkTarget(links: string, name: string): string | undefined {
    let target: string;
    try {
      target = readlinkSync(join(links, name));
    } catch {
      return undefined;
    }
    const m = /^\.\.\/store\/([a-z][a-z0-9_]*)\/([0-9a-f]{64})$/.exec(target);
    if (m?.[1] !== name || m[2] === undefined || !existsSync(join(this.store, name, m[2]))) return undefined;
    return m[2];
  }

  /** Read-only from here on: the subvolume's `ro` property, or (plain) no write bit on anything in it. */
  private seal(path: string): void {
    if (this.mode === 'btrfs') {
      this.btrfs.setReadOnly(path, true);
      return;
    }
    const walk = (p: string): void => {
      const st = lstatSync(p);
      if (st.isDirectory()) {
        for (const e of readdirSync(p)) walk(join(p, e));
        chmodSync(p, 0o555);
      } else chmodSync(p, 0o444);
    };
    walk(path);
    fsyncDir(path);
  }

  private removeVersion(path: string): void {
    if (this.mode === 'btrfs' && existsSync(path) && isSubvolumeRoot(path)) this.btrfs.deleteSubvolume(path);
    else rmSync(path, { recursive: true, force: true });
  }

  private async halt(point: BundleHaltPoint): Promise<void> {
    if (this.o.haltAt !== point) return;
    const marker = join(this.o.haltMarkerDir ?? this.root, 'halted-at');
    writeDurably(`${marker}.tmp`, Buffer.from(point));
    renameSync(`${marker}.tmp`, marker);
    await new Promise<never>(() => undefined);
  }
}

function notInstalled(name: string): OpError {
  return new OpError('UnknownPlugin', `no bundle of plugin ${name} is installed`, { plugin: name });
}

function lstatExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
