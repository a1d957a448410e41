import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../common/canonical/jcs.js';
import { keyFingerprint, packBundle, sha256 } from '../../common/bundles/format.js';
import { readTar, writeTar, type TarMember } from '../../common/bundles/tar.js';
import { OpError } from '../../common/contract/index.js';
import { verifyBundle, type TrustedKey } from './verify.js';

// The bundle check on its own, against bundles a test builds and tampers with byte by byte: each
// refusal must name its reason (details.check and the message), the good bundle must pass.
let dir: string;
const admin = generateKeyPairSync('ed25519');
const stranger = generateKeyPairSync('ed25519');
const trusted: TrustedKey[] = [
  { fingerprint: keyFingerprint(admin.publicKey), file: '/keys/admin.pem', key: admin.publicKey },
];

const TOML = `[plugin]
name = "marker"
version = "1.0.0"
entry = "index.mjs"
`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'opdbus-bundles-unit-'));
  mkdirSync(join(dir, 'lib'));
  writeFileSync(join(dir, 'plugin.toml'), TOML);
  writeFileSync(join(dir, 'index.mjs'), 'export default { plugin: {} };\n');
  writeFileSync(join(dir, 'lib', 'util.mjs'), 'export const x = 1;\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function refusal(archive: Buffer): { check: unknown; message: string } {
  try {
    verifyBundle(archive, trusted, '/keys');
  } catch (e) {
    expect(e).toBeInstanceOf(OpError);
    const err = e as OpError;
    expect(err.code).toBe('BundleRefused');
    return { check: (err.details as { check?: unknown }).check, message: err.message };
  }
  throw new Error('the bundle was accepted');
}

/** The good bundle's members, changed by fn, written again (the signature untouched). */
function tampered(fn: (members: TarMember[]) => TarMember[]): Buffer {
  const good = packBundle(dir, admin.privateKey).archive;
  return writeTar(
    fn(readTar(good).map((e) => ({ path: e.path, data: e.data, type: e.type, linkTarget: e.linkTarget }))),
  );
}

describe('verifyBundle', () => {
  it('accepts the packed directory: every file, its hash, the signer, the manifest', () => {
    const { archive, hash } = packBundle(dir, admin.privateKey);
    const v = verifyBundle(archive, trusted, '/keys');
    expect(v.hash).toBe(hash);
    expect(v.signer.file).toBe('/keys/admin.pem');
    expect([...v.files.keys()]).toEqual(['index.mjs', 'lib/util.mjs', 'plugin.toml']);
    expect(v.manifest.files.find((f) => f.path === 'plugin.toml')?.sha256).toBe(sha256(Buffer.from(TOML)));
    expect(v.plugin.plugin.name).toBe('marker');
  });

  it('packs the same directory to the same bytes (content-addressed)', () => {
    expect(packBundle(dir, admin.privateKey).archive.equals(packBundle(dir, admin.privateKey).archive)).toBe(
      true,
    );
  });

  it('refuses one flipped byte in a file: the hash', () => {
    const r = refusal(
      tampered((m) =>
        m.map((e) => {
          if (e.path !== 'files/index.mjs' || e.data === undefined) return e;
          const data = Buffer.from(e.data);
          data[3] = (data[3] as number) ^ 0x01;
          return { ...e, data };
        }),
      ),
    );
    expect(r.check).toBe('hash');
    expect(r.message).toMatch(/index\.mjs does not match the manifest/);
  });

  it('refuses a file added beside the manifest', () => {
    const r = refusal(tampered((m) => [...m, { path: 'files/extra.mjs', data: Buffer.from('evil') }]));
    expect(r).toEqual({
      check: 'unlisted',
      message: expect.stringMatching(/files\/extra\.mjs is not in the manifest/),
    });
  });

  it('refuses a file of the manifest that is missing', () => {
    const r = refusal(tampered((m) => m.filter((e) => e.path !== 'files/lib/util.mjs')));
    expect(r.check).toBe('missing');
  });

  it('refuses a bundle signed by a key that is not trusted, naming the key', () => {
    const r = refusal(packBundle(dir, stranger.privateKey).archive);
    expect(r.check).toBe('signer');
    expect(r.message).toContain(keyFingerprint(stranger.publicKey));
    expect(r.message).toMatch(/not a trusted key \(1 are in \/keys\)/);
  });

  it("refuses a manifest changed after signing (the trusted signer's name kept)", () => {
    const good = packBundle(dir, admin.privateKey);
    const changed = Buffer.from(
      canonicalJson({ ...good.manifest, plugin: { name: 'marker', version: '1.0.1' } }),
    );
    const r = refusal(
      tampered((m) => m.map((e) => (e.path === 'bundle.json' ? { ...e, data: changed } : e))),
    );
    expect(r.check).toBe('signature');
    expect(r.message).toMatch(/does not verify/);
  });

  it('refuses ../ in a path, an absolute path, a symlink to /etc, a hard link and a device node', () => {
    expect(
      refusal(tampered((m) => [...m, { path: 'files/../../etc/cron.d/x', data: Buffer.from('x') }])).check,
    ).toBe('path');
    expect(refusal(tampered((m) => [...m, { path: '/etc/passwd', data: Buffer.from('x') }])).message).toMatch(
      /absolute path/,
    );
    const link = refusal(tampered((m) => [...m, { path: 'files/etc', type: 'symlink', linkTarget: '/etc' }]));
    expect(link.check).toBe('symlink');
    expect(link.message).toMatch(/symbolic link \(to "\/etc"\)/);
    expect(
      refusal(tampered((m) => [...m, { path: 'files/pw', type: 'hardlink', linkTarget: '/etc/shadow' }]))
        .check,
    ).toBe('symlink');
    expect(refusal(tampered((m) => [...m, { path: 'files/sda', type: 'block-device' }])).check).toBe(
      'device',
    );
    expect(refusal(tampered((m) => [...m, { path: 'files/null', type: 'char-device' }])).message).toMatch(
      /char device node/,
    );
  });

  it('refuses a plugin.toml that fails the platform manifest schema, with its key', () => {
    writeFileSync(join(dir, 'plugin.toml'), `${TOML}colour = "red"\n`);
    try {
      const r = refusal(packBundle(dir, admin.privateKey).archive);
      expect(r.check).toBe('manifest');
      expect(r.message).toMatch(/plugin\.toml.*colour/);
    } finally {
      writeFileSync(join(dir, 'plugin.toml'), TOML);
    }
  });

  it('refuses a damaged archive header and an unsigned bundle', () => {
    const good = packBundle(dir, admin.privateKey).archive;
    const broken = Buffer.from(good);
    broken[10] = (broken[10] as number) ^ 0xff;
    expect(refusal(broken)).toEqual({ check: 'format', message: expect.stringMatching(/checksum/) });
    expect(refusal(tampered((m) => m.filter((e) => e.path !== 'bundle.sig'))).check).toBe('signature');
  });
});
