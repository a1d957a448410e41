import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packBundle } from '../../main/common/bundles/format.js';
import { readTar, writeTar, type TarMember } from '../../main/common/bundles/tar.js';
import type {
  ErrorPayload,
  PluginInstallResponse,
  PluginShowResponse,
  PluginsResponse,
} from '../../main/common/contract/index.js';
import { polkitRulesDir } from '../../main/devhost/host.js';
import { BUNDLE_HALT_POINTS } from '../../main/service/bundles/store.js';
import { LoopFilesystem, loopFilesystemSupport } from '../../main/service/storage/loop-filesystem.js';
import { TestSandbox, waitFor } from '../support/sandbox.js';

// Plugins installed from signed bundles into a real core on a real bus with polkitd, first with the
// data dir on this machine's own (non-BTRFS) filesystem, then on a loop-mounted BTRFS bound over
// the same data dir. Read back independently: `btrfs subvolume list` and `btrfs property get ro`,
// readlink/stat of the links and directories, sha256sum of every installed file, and the file the
// test plugin writes (it records its own version, so which version ran a plan is seen on disk).
let sb: TestSandbox;
let work: string;
let loop: LoopFilesystem | undefined;
let markerFile: string;
const admin = generateKeyPairSync('ed25519');
const stranger = generateKeyPairSync('ed25519');

/** The test plugin at a version: its apply writes { value, version } into markerFile. */
function pluginDir(version: string): string {
  const dir = join(work, `marker-${version}`);
  if (existsSync(dir)) return dir;
  mkdirSync(join(dir, 'lib'), { recursive: true });
  writeFileSync(
    join(dir, 'plugin.toml'),
    `[plugin]\nname = "marker"\nversion = "${version}"\nentry = "index.mjs"\n\n[limits]\ndeadline_s = 20\n\n[isolation]\nwrite = ["${dirname(markerFile)}"]\n\n[config]\nfile = "${markerFile}"\n`,
  );
  writeFileSync(join(dir, 'lib', 'version.mjs'), `export const VERSION = ${JSON.stringify(version)};\n`);
  writeFileSync(
    join(dir, 'index.mjs'),
    `import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { VERSION } from './lib/version.mjs';
const read = (ctx) => (existsSync(ctx.config.file) ? JSON.parse(readFileSync(ctx.config.file, 'utf8')) : { value: '' });
export default {
  schema: { type: 'object', properties: { value: { type: 'string' } }, required: ['value'], additionalProperties: false },
  plugin: {
    async available() { return { available: true }; },
    async query(ctx) { return { value: read(ctx).value }; },
    async diff(current, desired) {
      const same = current.value === desired.value;
      return { resources: [{ id: 'value', action: same ? 'noop' : 'modify', changes: same ? [] : [{ path: '/plugins/marker/value', before: current.value, after: desired.value }] }] };
    },
    async checkpoint(_d, ctx) { return read(ctx); },
    async apply(_diff, desired, ctx) { writeFileSync(ctx.config.file, JSON.stringify({ value: desired.value, version: VERSION })); return { changed: 1 }; },
    async verify(desired, ctx) { const v = read(ctx).value; return { drift: v === desired.value ? [] : [{ path: '/plugins/marker/value', expected: desired.value, actual: v }] }; },
    async rollback(checkpoint, ctx) { writeFileSync(ctx.config.file, JSON.stringify(checkpoint)); },
  },
};
`,
  );
  // a few kilobytes of payload, so a bundle has more than its code
  writeFileSync(join(dir, 'lib', 'data.bin'), Buffer.alloc(20_000, version));
  return dir;
}

const keyFile = (): string => join(work, 'admin.key');
const cliJson = <T>(args: string[], uid?: string): T => {
  const r = sb.cli([...args, '--json'], uid !== undefined ? { uid } : {});
  if (r.code !== 0)
    throw new Error(`op-dbus ${args.join(' ')} exited ${String(r.code)}:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
};
const errorOf = (args: string[]): ErrorPayload => {
  const r = sb.cli([...args, '--json']);
  expect(r.code, r.stdout).toBe(1);
  return (JSON.parse(r.stdout) as { error: ErrorPayload }).error;
};

/** Packs the test plugin at version through the CLI; returns the bundle file and its hash. */
function pack(version: string): { file: string; hash: string } {
  const file = join(work, `marker-${version}.opdbundle`);
  const r = cliJson<{ hash: string }>([
    'plugin',
    'pack',
    pluginDir(version),
    '--key',
    keyFile(),
    '--out',
    file,
  ]);
  return { file, hash: r.hash };
}

const bundlesDir = (): string => join(sb.dataDir, 'bundles');
const activeHash = (): string | undefined => {
  const link = join(bundlesDir(), 'active', 'marker');
  return existsSync(link) ? /([0-9a-f]{64})$/.exec(readlinkSync(link))?.[1] : undefined;
};
const previousHash = (): string | undefined => {
  const link = join(bundlesDir(), 'previous', 'marker');
  return existsSync(link) ? /([0-9a-f]{64})$/.exec(readlinkSync(link))?.[1] : undefined;
};

/** Every path under bundles/ with its type, mode and link target: what "nothing written" compares. */
function tree(): string[] {
  const out: string[] = [];
  const walk = (p: string): void => {
    const st = lstatSync(p);
    const rel = relative(bundlesDir(), p) || '.';
    if (st.isSymbolicLink()) out.push(`${rel} -> ${readlinkSync(p)}`);
    else
      out.push(
        `${rel} ${st.isDirectory() ? 'd' : 'f'}${(st.mode & 0o7777).toString(8)} ${st.isFile() ? st.size : ''}`,
      );
    if (st.isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
  };
  walk(bundlesDir());
  return out;
}

/** `btrfs subvolume list` of the mounted filesystem: path of each subvolume. */
function subvolumes(): string[] {
  if (loop === undefined) return [];
  return execFileSync('btrfs', ['subvolume', 'list', loop.mountPoint], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => /path (.*)$/.exec(l)?.[1] ?? l);
}
const roProperty = (path: string): string =>
  execFileSync('btrfs', ['property', 'get', '-ts', path, 'ro'], { encoding: 'utf8' }).trim();

/** sha256sum of every installed file of a version against the source directory's files. */
function expectComplete(hash: string, version: string): void {
  const installed = join(bundlesDir(), 'store', 'marker', hash, 'plugin');
  const src = pluginDir(version);
  const files = ['index.mjs', 'lib/data.bin', 'lib/version.mjs', 'plugin.toml'];
  const sums = (root: string): string[] =>
    execFileSync('sha256sum', files, { cwd: root, encoding: 'utf8' }).trim().split('\n');
  expect(sums(installed)).toEqual(sums(src));
  const listed = execFileSync('find', [installed, '-type', 'f'], { encoding: 'utf8' })
    .trim()
    .split('\n').length;
  expect(listed).toBe(files.length);
}

/** Applies value through the CLI and returns what the plugin wrote (which version ran). */
function applyValue(value: string): { value: string; version: string } {
  const file = join(work, `doc-${value}.json`);
  writeFileSync(file, JSON.stringify({ version: 1, plugins: { marker: { value } } }));
  const r = sb.cli(['apply', file, '--yes']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(readFileSync(markerFile, 'utf8')) as { value: string; version: string };
}

const markerVersion = (): string | undefined =>
  cliJson<PluginsResponse>(['plugin', 'list']).plugins.find((p) => p.name === 'marker')?.version;

/** The good bundle's archive with its members changed (the signature untouched). */
function tamper(bundle: string, fn: (m: TarMember[]) => TarMember[]): string {
  const members = readTar(readFileSync(bundle)).map((e) => ({
    path: e.path,
    data: e.data,
    type: e.type,
    linkTarget: e.linkTarget,
  }));
  const out = join(work, `tampered-${Math.random().toString(36).slice(2)}.opdbundle`);
  writeFileSync(out, writeTar(fn(members)));
  return out;
}

async function stopCore(): Promise<void> {
  const pid = sb.corePid();
  if (pid === undefined) return;
  process.kill(pid, 'SIGTERM');
  await waitFor('the core to stop', () => sb.corePid() === undefined, 30_000);
}

/** Installs with the core halted at point, kill -9s it there, and starts a fresh core. */
async function killDuringInstall(point: string, bundle: string): Promise<void> {
  const marker = join(sb.dataDir, 'halted-at');
  rmSync(marker, { force: true });
  await sb.restartCore({ OP_DBUS_TEST_BUNDLE_HALT_AT: point });
  const install = sb.cliBackground(['plugin', 'install', bundle]);
  let exited = false;
  install.on('exit', () => (exited = true));
  try {
    await waitFor(`the core to halt at ${point}`, () => {
      if (exited && !existsSync(marker)) throw new Error(`the install ended before ${point}`);
      return existsSync(marker);
    });
    process.kill(sb.corePid() as number, 'SIGKILL');
    await waitFor('the core to die', () => sb.corePid() === undefined);
  } finally {
    install.kill('SIGKILL');
    rmSync(marker, { force: true });
  }
  await sb.restartCore();
}

beforeAll(async () => {
  sb = await TestSandbox.start({ prefix: 'opdbus-bundles-' });
  work = join(sb.dir, '..', 'work');
  mkdirSync(work, { mode: 0o755 });
  // an installed bundle runs isolated, as nobody: it may write only here (its manifest's [isolation] write)
  mkdirSync(join(work, 'marker-state'), { mode: 0o755 });
  chownSync(join(work, 'marker-state'), 65534, 65534);
  markerFile = join(work, 'marker-state', 'marker.json');
  writeFileSync(keyFile(), admin.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const trusted = sb.env['OP_DBUS_TRUSTED_KEYS'] as string;
  expect(trusted).toBe(join(sb.dir, 'trusted-keys'));
  mkdirSync(trusted, { mode: 0o755 });
  writeFileSync(join(trusted, 'admin.pem'), admin.publicKey.export({ type: 'spki', format: 'pem' }), {
    mode: 0o644,
  });
  // nobody may manage plugins, daemon may only read
  writeFileSync(
    join(polkitRulesDir(sb.dir), '50-opdbus-bundles-test.rules'),
    `polkit.addRule(function (action, subject) {
  if (action.id.indexOf("org.opdbus.") != 0) return polkit.Result.NOT_HANDLED;
  if (subject.user == "nobody") return polkit.Result.YES;
  if (subject.user == "daemon") return action.id == "org.opdbus.read" ? polkit.Result.YES : polkit.Result.NO;
  return polkit.Result.NOT_HANDLED;
});
`,
  );
  await waitFor('polkitd to load the test rules', () => sb.cli(['query'], { uid: 'daemon' }).code === 0);
}, 120_000);

afterAll(async () => {
  if (sb !== undefined) {
    await stopCore().catch(() => undefined);
    if (loop !== undefined) {
      spawnSync('umount', [sb.dataDir]);
      loop.close();
    }
    await sb.stop();
  }
});

describe('plugin pack', () => {
  it('refuses a key file others can read, naming the mode', () => {
    chmodSync(keyFile(), 0o644);
    try {
      const r = sb.cli(['plugin', 'pack', pluginDir('1.0.0'), '--key', keyFile(), '--json']);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/mode 644: a private key must be readable by its owner only/);
    } finally {
      chmodSync(keyFile(), 0o600);
    }
  });
});

for (const storage of ['plain', 'btrfs'] as const) {
  describe(`bundles on ${storage === 'btrfs' ? 'a loop-mounted BTRFS' : 'a plain directory (ext4)'}`, () => {
    let v1: { file: string; hash: string };
    let v2: { file: string; hash: string };

    beforeAll(async () => {
      if (storage === 'btrfs') {
        const support = loopFilesystemSupport('btrfs');
        if (!support.ok) throw new Error(`BTRFS is needed here: ${support.reason}`);
        // a new data dir on BTRFS in the same place: the plain one moves aside, its witness record goes
        await stopCore();
        renameSync(sb.dataDir, `${sb.dataDir}-plain`);
        rmSync(sb.stateDir, { recursive: true, force: true });
        loop = LoopFilesystem.create('btrfs', 320);
        mkdirSync(sb.dataDir, { mode: 0o700 });
        execFileSync('mount', ['--bind', loop.mountPoint, sb.dataDir]);
        await sb.restartCore();
      }
      v1 = pack('1.0.0');
      v2 = pack('2.0.0');
      rmSync(markerFile, { force: true });
    }, 120_000);

    it('polkit: installing needs org.opdbus.manage-plugins; a refused uid writes nothing and is audited', () => {
      const before = existsSync(bundlesDir()) ? tree() : [];
      const r = sb.cli(['plugin', 'install', v1.file, '--json'], { uid: 'daemon' });
      expect(r.code).toBe(1);
      expect((JSON.parse(r.stdout) as { error: ErrorPayload }).error.code).toBe('NotAuthorized');
      expect(existsSync(bundlesDir()) ? tree() : []).toEqual(before);
      const denied = cliJson<{ entries: { kind: string; actor: { action?: string } }[] }>([
        'audit',
        'list',
        '--kind',
        'auth-denied',
      ]);
      expect(denied.entries.some((e) => e.actor.action === 'org.opdbus.manage-plugins')).toBe(true);
    });

    it(`install: a read-only ${storage === 'btrfs' ? 'subvolume' : 'directory'}, active, loaded without a restart, audited with hash and signer`, () => {
      const pid = sb.corePid();
      const r = cliJson<PluginInstallResponse>(['plugin', 'install', v1.file], 'nobody');
      expect(r).toMatchObject({
        name: 'marker',
        version: '1.0.0',
        hash: v1.hash,
        before: null,
        already: false,
      });
      expect(activeHash()).toBe(v1.hash);
      const version = join(bundlesDir(), 'store', 'marker', v1.hash);
      if (storage === 'btrfs') {
        expect(subvolumes()).toContain(`bundles/store/marker/${v1.hash}`);
        expect(roProperty(version)).toBe('ro=true');
        expect(() => writeFileSync(join(version, 'plugin', 'x'), 'x')).toThrow(/EROFS|read-only/i);
      } else {
        expect(execFileSync('stat', ['-c', '%a', version], { encoding: 'utf8' }).trim()).toBe('555');
        expect(
          execFileSync('stat', ['-c', '%a', join(version, 'plugin', 'index.mjs')], {
            encoding: 'utf8',
          }).trim(),
        ).toBe('444');
      }
      expectComplete(v1.hash, '1.0.0');
      expect(markerVersion()).toBe('1.0.0');
      expect(applyValue('a')).toEqual({ value: 'a', version: '1.0.0' });
      expect(sb.corePid()).toBe(pid);
      const audit = cliJson<{ entries: { kind: string; plugin: string | null; summary: string }[] }>([
        'audit',
        'list',
        '--kind',
        'plugin',
        '--limit',
        '500',
      ]);
      const entry = audit.entries.find((e) => e.summary.startsWith('plugin install marker 1.0.0'));
      expect(entry?.summary).toContain(v1.hash);
      expect(entry?.summary).toContain(r.signer);
    });

    it('switch: a plan made before keeps its version; the next plan uses the new one; the old is kept', async () => {
      const doc = JSON.stringify({ version: 1, plugins: { marker: { value: 'b' } } });
      const client = await sb.client();
      try {
        const plan = await client.call('Plan', { document: doc });
        await client.call('Approve', { planId: plan.id, hash: plan.hash });
        const r = cliJson<PluginInstallResponse>(['plugin', 'install', v2.file]);
        expect(r).toMatchObject({ version: '2.0.0', hash: v2.hash, before: v1.hash });
        expect(activeHash()).toBe(v2.hash);
        expect(previousHash()).toBe(v1.hash);
        await client.call('Apply', { planId: plan.id, hash: plan.hash });
      } finally {
        client.close();
      }
      expect(JSON.parse(readFileSync(markerFile, 'utf8'))).toEqual({ value: 'b', version: '1.0.0' });
      expect(applyValue('c')).toEqual({ value: 'c', version: '2.0.0' });
      expectComplete(v2.hash, '2.0.0');
      if (storage === 'btrfs') {
        expect(subvolumes()).toEqual(
          expect.arrayContaining([`bundles/store/marker/${v1.hash}`, `bundles/store/marker/${v2.hash}`]),
        );
        expect(roProperty(join(bundlesDir(), 'store', 'marker', v2.hash))).toBe('ro=true');
      }
    });

    it('rollback: the previous version is active again and runs the next plan; show says which storage', () => {
      const r = cliJson<{ from: string; to: string }>(['plugin', 'rollback', 'marker']);
      expect(r).toMatchObject({ from: v2.hash, to: v1.hash });
      expect(activeHash()).toBe(v1.hash);
      expect(previousHash()).toBe(v2.hash);
      expect(applyValue('d')).toEqual({ value: 'd', version: '1.0.0' });
      const show = cliJson<PluginShowResponse>(['plugin', 'show', 'marker']);
      expect(show.storage).toBe(storage);
      const b = show.bundles[0];
      expect(b).toMatchObject({ name: 'marker', storage, active: v1.hash, previous: v2.hash });
      expect(b?.versions.map((v) => [v.version, v.active, v.previous, v.readOnly, v.kind]).sort()).toEqual([
        ['1.0.0', true, false, true, storage === 'btrfs' ? 'subvolume' : 'directory'],
        ['2.0.0', false, true, true, storage === 'btrfs' ? 'subvolume' : 'directory'],
      ]);
      expect(b?.versions[0]?.signerKey).toBe(join(sb.dir, 'trusted-keys', 'admin.pem'));
      expect(sb.cli(['plugin', 'show']).stdout).toMatch(
        storage === 'btrfs'
          ? /storage: btrfs \(each version a read-only subvolume\)/
          : /storage: plain directories/,
      );
      const audit = cliJson<{ entries: { summary: string }[] }>([
        'audit',
        'list',
        '--kind',
        'plugin',
        '--limit',
        '500',
      ]);
      expect(
        audit.entries.some((e) => e.summary.startsWith(`plugin rollback marker: bundle ${v1.hash}`)),
      ).toBe(true);
    });

    it('refuses tampered bundles, each with its reason, and writes nothing', () => {
      const strangerKey = join(work, 'stranger.key');
      writeFileSync(strangerKey, stranger.privateKey.export({ type: 'pkcs8', format: 'pem' }), {
        mode: 0o600,
      });
      const untrusted = join(work, 'untrusted.opdbundle');
      writeFileSync(untrusted, packBundle(pluginDir('2.0.0'), stranger.privateKey).archive);
      const cases: [string, string, RegExp][] = [
        [
          tamper(v2.file, (m) =>
            m.map((e) => {
              if (e.path !== 'files/index.mjs' || e.data === undefined) return e;
              const data = Buffer.from(e.data);
              data[0] = (data[0] as number) ^ 0x01;
              return { ...e, data };
            }),
          ),
          'hash',
          /index\.mjs does not match the manifest/,
        ],
        [
          tamper(v2.file, (m) => [...m, { path: 'files/extra.mjs', data: Buffer.from('x') }]),
          'unlisted',
          /files\/extra\.mjs is not in the manifest/,
        ],
        [untrusted, 'signer', /signed by key sha256:[0-9a-f]{64}, which is not a trusted key/],
        [
          tamper(v2.file, (m) => [...m, { path: 'files/../../../etc/cron.d/x', data: Buffer.from('x') }]),
          'path',
          /escapes its directory/,
        ],
        [
          tamper(v2.file, (m) => [...m, { path: 'files/etc', type: 'symlink', linkTarget: '/etc' }]),
          'symlink',
          /symbolic link \(to "\/etc"\)/,
        ],
      ];
      const before = tree();
      const subvolumesBefore = subvolumes();
      for (const [file, check, message] of cases) {
        const e = errorOf(['plugin', 'install', file]);
        expect(e.code).toBe('BundleRefused');
        expect((e.details as { check: string }).check).toBe(check);
        expect(e.message).toMatch(message);
        expect(tree()).toEqual(before);
        expect(subvolumes()).toEqual(subvolumesBefore);
      }
      expect(activeHash()).toBe(v1.hash);
      const audit = cliJson<{ entries: { summary: string }[] }>([
        'audit',
        'list',
        '--kind',
        'plugin',
        '--limit',
        '500',
      ]);
      expect(
        audit.entries.filter((e) => /^plugin install of .* refused: bundle refused/.test(e.summary)).length,
      ).toBeGreaterThanOrEqual(cases.length);
    });

    const points =
      storage === 'btrfs' ? BUNDLE_HALT_POINTS : (['bundle-after-files', 'bundle-after-previous'] as const);
    for (const point of points) {
      it(`kill -9 at ${point}: after restart exactly one version is active, and it is complete`, async () => {
        // from v1 alone installed, install v2 and die at the point
        cliJson(['plugin', 'remove', 'marker']);
        cliJson(['plugin', 'install', v1.file]);
        expect(activeHash()).toBe(v1.hash);
        await killDuringInstall(point, v2.file);
        const active = readdirSync(join(bundlesDir(), 'active'));
        expect(active).toEqual(['marker']);
        const hash = activeHash();
        const expected = point === 'bundle-after-switch' ? v2 : v1;
        expect(hash).toBe(expected.hash);
        const version = expected === v1 ? '1.0.0' : '2.0.0';
        expectComplete(expected.hash, version);
        // nothing half-made is left: every entry of the store is a version a link names
        const kept = readdirSync(join(bundlesDir(), 'store', 'marker')).sort();
        expect(kept).toEqual(
          [...new Set([activeHash(), previousHash()].filter((h) => h !== undefined))].sort(),
        );
        if (storage === 'btrfs') {
          expect(
            subvolumes()
              .filter((s) => s.startsWith('bundles/'))
              .sort(),
          ).toEqual(kept.map((h) => `bundles/store/marker/${h}`));
          expect(roProperty(join(bundlesDir(), 'store', 'marker', expected.hash))).toBe('ro=true');
        }
        expect(markerVersion()).toBe(version);
        expect(applyValue(`after-${point}`).version).toBe(version);
        // and the interrupted install completes when run again
        const again = cliJson<PluginInstallResponse>(['plugin', 'install', v2.file]);
        expect(again.hash).toBe(v2.hash);
        expectComplete(v2.hash, '2.0.0');
      }, 120_000);
    }

    if (storage === 'btrfs') {
      it('a bundle of 100 files and ~5 MB goes through the bus in one request and installs', () => {
        const dir = join(work, 'bulk');
        mkdirSync(join(dir, 'lib'), { recursive: true });
        writeFileSync(
          join(dir, 'plugin.toml'),
          `[plugin]\nname = "bulk"\nversion = "1.0.0"\nentry = "index.mjs"\n`,
        );
        writeFileSync(join(dir, 'index.mjs'), readFileSync(join(pluginDir('1.0.0'), 'index.mjs')));
        writeFileSync(join(dir, 'lib', 'version.mjs'), 'export const VERSION = "bulk";\n');
        for (let i = 0; i < 97; i++)
          writeFileSync(join(dir, 'lib', `asset-${i}.bin`), Buffer.alloc(52_000, i));
        const file = join(work, 'bulk.opdbundle');
        cliJson(['plugin', 'pack', dir, '--key', keyFile(), '--out', file]);
        expect(lstatSync(file).size).toBeGreaterThan(5_000_000);
        const r = cliJson<PluginInstallResponse>(['plugin', 'install', file]);
        const version = r.bundle.versions.find((v) => v.active);
        expect(version).toMatchObject({ files: 100, kind: 'subvolume', readOnly: true });
        expect(roProperty(join(bundlesDir(), 'store', 'bulk', r.hash))).toBe('ro=true');
        expect(cliJson<{ removed: string[] }>(['plugin', 'remove', 'bulk']).removed).toEqual([r.hash]);
      });
    }

    it('remove: every version deleted, the plugin gone from the next plan, audited', () => {
      const r = cliJson<{ removed: string[] }>(['plugin', 'remove', 'marker']);
      expect(r.removed.length).toBeGreaterThan(0);
      expect(existsSync(join(bundlesDir(), 'store', 'marker'))).toBe(false);
      expect(readdirSync(join(bundlesDir(), 'active'))).toEqual([]);
      if (storage === 'btrfs') expect(subvolumes().filter((s) => s.startsWith('bundles/'))).toEqual([]);
      expect(markerVersion()).toBeUndefined();
      const file = join(work, 'doc-gone.json');
      writeFileSync(file, JSON.stringify({ version: 1, plugins: { marker: { value: 'z' } } }));
      expect(errorOf(['plan', file]).code).toBe('UnknownPlugin');
      const audit = cliJson<{ entries: { summary: string }[] }>([
        'audit',
        'list',
        '--kind',
        'plugin',
        '--limit',
        '500',
      ]);
      expect(audit.entries.some((e) => e.summary.startsWith('plugin remove marker'))).toBe(true);
    });
  });
}
