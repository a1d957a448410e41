import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyFingerprint, packBundle } from '../../main/common/bundles/format.js';
import { BundleStore } from '../../main/service/bundles/store.js';
import { verifyBundle, type TrustedKey, type VerifiedBundle } from '../../main/service/bundles/verify.js';
import { LoopFilesystem, loopFilesystemSupport } from '../../main/service/storage/loop-filesystem.js';
import type { BenchCase, BenchGroup, StartedGroup } from '../harness.js';
import { seededRandom } from '../statistics.js';
import { fsyncDir, writeDurably } from '../../main/service/storage/durable-file.js';

const FILES = 100;
/** 98 assets of 50,000 bytes beside plugin.toml and index.mjs: 4.9 MB of files, a 4.98 MB archive. */
const FILE_BYTES = 50_000;

/** A plugin directory of 100 files, 5 MB, whose content differs per variant (so each is a new bundle). */
function pluginTree(dir: string, variant: number, seed: number): void {
  mkdirSync(join(dir, 'lib'), { recursive: true });
  writeFileSync(
    join(dir, 'plugin.toml'),
    `[plugin]\nname = "bulk"\nversion = "1.0.${variant}"\nentry = "index.mjs"\n`,
  );
  writeFileSync(join(dir, 'index.mjs'), `export default { plugin: {} }; // ${variant}\n`);
  const random = seededRandom(seed + variant);
  for (let i = 0; i < FILES - 2; i++) {
    const data = Buffer.alloc(FILE_BYTES);
    // half random, half text-like: what a plugin's assets and code look like to the disk
    randomFillSync(data, 0, FILE_BYTES / 2);
    data.fill(`asset ${i} ${Math.floor(random() * 1e9)}\n`, FILE_BYTES / 2);
    writeFileSync(join(dir, 'lib', `asset-${String(i).padStart(3, '0')}.bin`), data);
  }
}

/**
 * The seed's "snapshot-based plugin distribution" against the plain alternative, on one loop-mounted
 * BTRFS: installing a verified 100-file, 5 MB bundle as a read-only subvolume (BundleStore in btrfs
 * mode) and as a read-only plain directory (plain mode), against copying the same files into a
 * directory and renaming it into place; and switching the active version (a symlink replaced by
 * rename(2)) against renaming a directory. The bundle check itself (hashes and signature) is
 * measured once per round too, since every install pays it whatever the storage.
 */
export const bundlesGroup: BenchGroup = {
  name: 'bundles',
  description:
    'Install of a verified 100-file / 5 MB plugin bundle as a read-only BTRFS subvolume vs a read-only plain ' +
    'directory vs a plain copy + rename (all with fsync per file, on one loop-mounted BTRFS); the version ' +
    'switch (symlink + rename(2)) vs a directory rename; the bundle check (hashes + Ed25519).',
  baseline: 'install-directory',
  start: async (): Promise<StartedGroup> => {
    const support = loopFilesystemSupport('btrfs');
    if (!support.ok) throw new Error(`the bundles group needs a loop-mounted BTRFS: ${support.reason}`);
    const src = mkdtempSync(join(tmpdir(), 'opdbus-bench-bundles-'));
    let fs: LoopFilesystem | undefined;
    try {
      fs = LoopFilesystem.create('btrfs', 2048);
      const mnt = fs.mountPoint;
      const key = generateKeyPairSync('ed25519');
      const trusted: TrustedKey[] = [
        { fingerprint: keyFingerprint(key.publicKey), file: 'bench.pem', key: key.publicKey },
      ];
      // three distinct bundles, installed in turn: each install then writes a version the store does not hold
      const archives: Buffer[] = [];
      const bundles: VerifiedBundle[] = [];
      for (let v = 0; v < 3; v++) {
        const dir = join(src, `v${v}`);
        pluginTree(dir, v, 18);
        const archive = packBundle(dir, key.privateKey).archive;
        archives.push(archive);
        bundles.push(verifyBundle(archive, trusted, 'bench'));
      }
      const snap = new BundleStore({ root: join(mnt, 'snap'), mode: 'btrfs' });
      const plain = new BundleStore({ root: join(mnt, 'plain'), mode: 'plain' });
      const switcher = new BundleStore({ root: join(mnt, 'switch'), mode: 'btrfs' });
      await switcher.install(bundles[0] as VerifiedBundle, 'bench');
      await switcher.install(bundles[1] as VerifiedBundle, 'bench');
      const copies = join(mnt, 'copies');
      mkdirSync(copies);
      const renames = join(mnt, 'renames');
      mkdirSync(join(renames, 'a'), { recursive: true });
      const turn = { snap: 0, plain: 0, copy: 0, rename: 0, verify: 0 };
      const next = (k: keyof typeof turn): VerifiedBundle => bundles[turn[k]++ % 3] as VerifiedBundle;
      const cases: BenchCase[] = [
        {
          name: 'install-directory',
          run: async () => {
            // the floor: the same files written (fsync each) into a new directory, renamed into place, the old one deleted
            const b = next('copy');
            const temp = join(copies, '.new');
            for (const [path, data] of b.files) writeDurably(join(temp, path), data);
            rmSync(join(copies, 'current'), { recursive: true, force: true });
            renameSync(temp, join(copies, 'current'));
            fsyncDir(copies);
          },
        },
        {
          name: 'install-snapshot',
          run: async () => {
            const r = await snap.install(next('snap'), 'bench');
            if (r.already) throw new Error('the store already had this version: nothing was written');
          },
        },
        {
          name: 'install-plain',
          run: async () => {
            const r = await plain.install(next('plain'), 'bench');
            if (r.already) throw new Error('the store already had this version: nothing was written');
          },
        },
        {
          name: 'switch-symlink',
          run: async () => {
            await switcher.rollback('bulk');
          },
        },
        {
          name: 'dir-rename',
          run: async () => {
            const [from, to] = turn.rename++ % 2 === 0 ? ['a', 'b'] : ['b', 'a'];
            renameSync(join(renames, from), join(renames, to));
            fsyncDir(renames);
          },
        },
        {
          name: 'verify-bundle',
          run: async () => {
            verifyBundle(archives[turn.verify++ % 3] as Buffer, trusted, 'bench');
          },
        },
      ];
      const loop = fs;
      return {
        cases,
        notes: [
          `BTRFS image of 2 GiB on ${loop.device}, mounted at ${mnt}; bundles of ${bundles[0]?.files.size ?? 0} files, ${[...(bundles[0]?.files.values() ?? [])].reduce((n, d) => n + d.length, 0)} bytes of files, archive ${archives[0]?.length ?? 0} bytes`,
          'install-* include writing and fsyncing every file, sealing (btrfs: the ro property; plain: chmod of each file), the rename to the hash, the symlink switch and deleting the version two installs back',
        ],
        notesAfter: async () => {
          const list = execFileSync('btrfs', ['subvolume', 'list', mnt], { encoding: 'utf8' })
            .trim()
            .split('\n');
          return [
            `after the run: ${list.length} subvolumes (btrfs subvolume list): ${list.map((l) => /path (.*)$/.exec(l)?.[1]).join(', ')}`,
          ];
        },
        stop: async () => {
          loop.close();
          rmSync(src, { recursive: true, force: true });
        },
      };
    } catch (e) {
      fs?.close();
      rmSync(src, { recursive: true, force: true });
      throw e;
    }
  },
};
