import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyFingerprint } from '../../common/bundles/format.js';
import { DEFAULT_TRUSTED_KEYS_DIR, parseCoreConfig } from '../core/config.js';
import { readTrustedKeys } from './trusted-keys.js';

let dir: string;
const admin = generateKeyPairSync('ed25519');
const pem = (k: ReturnType<typeof generateKeyPairSync>['publicKey']): string =>
  k.export({ type: 'spki', format: 'pem' }) as string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'opdbus-bundles-keys-'));
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'admin.pem'), pem(admin.publicKey), { mode: 0o644 });
  writeFileSync(join(dir, 'rsa.pem'), pem(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey));
  writeFileSync(join(dir, 'shared.pem'), pem(generateKeyPairSync('ed25519').publicKey));
  chmodSync(join(dir, 'shared.pem'), 0o664);
  writeFileSync(join(dir, 'junk.pem'), 'not a key');
  writeFileSync(join(dir, 'README'), 'ignored: not .pem');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readTrustedKeys', () => {
  it("takes root's Ed25519 keys and names each file it ignores, and why", () => {
    const t = readTrustedKeys(dir);
    expect(t.keys.map((k) => [k.file, k.fingerprint])).toEqual([
      [join(dir, 'admin.pem'), keyFingerprint(admin.publicKey)],
    ]);
    const why = Object.fromEntries(t.ignored.map((i) => [i.file.slice(dir.length + 1), i.reason]));
    expect(why['rsa.pem']).toMatch(/an rsa key, not Ed25519/);
    expect(why['shared.pem']).toMatch(/writable by its group/);
    expect(why['junk.pem']).toMatch(/not a PEM public key/);
    expect(Object.keys(why).sort()).toEqual(['junk.pem', 'rsa.pem', 'shared.pem']);
  });

  it('a missing directory trusts nobody', () => {
    expect(readTrustedKeys(join(dir, 'absent')).keys).toEqual([]);
  });
});

describe('[bundles] in the core configuration', () => {
  it('names the trusted keys directory, by default /etc/op-dbus/trusted-keys; a relative path is refused', () => {
    expect(parseCoreConfig('[bundles]\ntrusted_keys = "/srv/keys"\n', 'c.toml').bundles).toEqual({
      trustedKeys: '/srv/keys',
    });
    expect(parseCoreConfig('', 'c.toml').bundles).toEqual({ trustedKeys: DEFAULT_TRUSTED_KEYS_DIR });
    expect(() => parseCoreConfig('[bundles]\ntrusted_keys = "keys"\n', 'c.toml')).toThrow(
      /c\.toml: bundles\.trusted_keys: an absolute path/,
    );
    expect(() => parseCoreConfig('[bundles]\nkeys = "/k"\n', 'c.toml')).toThrow(/bundles/);
  });
});
