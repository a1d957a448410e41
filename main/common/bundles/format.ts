// The plugin bundle's format (issue 18): a plugin directory packed as a ustar archive of
//   bundle.json  the manifest: plugin name and version, the signer's key, every file's path, size and SHA-256
//   bundle.sig   an Ed25519 signature over bundle.json's exact bytes
//   files/...    the plugin directory's files
// The bundle's hash is the SHA-256 of bundle.json: it names the bundle and, through the file
// hashes it lists, every byte of it (content-addressed). Packing is here (the CLI's side); checking
// a bundle is the core's (main/service/bundles/verify.ts).

import { createHash, createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { parse as parseToml } from 'smol-toml';
import { canonicalJson } from '../canonical/jcs.js';
import { OpError } from '../contract/index.js';
import { writeTar } from './tar.js';

export const BUNDLE_FORMAT = 'op-dbus-bundle/1';
export const MANIFEST_MEMBER = 'bundle.json';
export const SIGNATURE_MEMBER = 'bundle.sig';
export const FILES_PREFIX = 'files/';
export const PLUGIN_TOML = 'plugin.toml';

/** The largest bundle the core takes: it arrives base64 in one Manager1 request (at most 9 Mi characters). */
export const MAX_BUNDLE_BYTES = 6 * 1024 * 1024;
export const MAX_FILES = 2000;

/** What a bundle check found wrong: the refusal's `details.check`. */
export type BundleCheck =
  | 'format'
  | 'path'
  | 'symlink'
  | 'device'
  | 'type'
  | 'signer'
  | 'signature'
  | 'unlisted'
  | 'missing'
  | 'hash'
  | 'manifest';

/** A refusal naming what is wrong; `check` says which test failed, for programs. */
export function bundleRefused(check: BundleCheck, message: string, path?: string): OpError {
  return new OpError(
    'BundleRefused',
    `bundle refused: ${message}`,
    path !== undefined ? { file: path } : undefined,
    {
      check,
      ...(path !== undefined ? { path } : {}),
    },
  );
}

const SHA256 = /^[0-9a-f]{64}$/;

/** SHA-256 (hex) of bytes. */
export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
/** A path segment: letters, digits and . _ - + @, not starting with a dot-dot or a dash. */
const SEGMENT = /^[A-Za-z0-9_+@][A-Za-z0-9_.+@-]*$|^\.[A-Za-z0-9_+@-][A-Za-z0-9_.+@-]*$/;

/** Why a path inside a bundle is unacceptable, or undefined: relative, no `..`, `.` or empty segment, at most 255 bytes. */
export function pathProblem(path: string): string | undefined {
  if (path === '') return 'an empty path';
  if (path.startsWith('/')) return `${JSON.stringify(path)} is an absolute path`;
  if (Buffer.byteLength(path) > 255)
    return `${JSON.stringify(path.slice(0, 40))}... is longer than 255 bytes`;
  for (const segment of path.split('/')) {
    if (segment === '..') return `${JSON.stringify(path)} escapes its directory (..)`;
    if (segment === '' || segment === '.') return `${JSON.stringify(path)} has an empty or "." segment`;
    if (!SEGMENT.test(segment)) {
      return `${JSON.stringify(path)} has a character outside letters, digits and . _ - + @ in ${JSON.stringify(segment)}`;
    }
  }
  return undefined;
}

const FileEntry = z.strictObject({
  path: z.string(),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(SHA256, '64 lower-case hex digits'),
});
export const BundleManifest = z.strictObject({
  format: z.literal(BUNDLE_FORMAT),
  plugin: z.strictObject({ name: z.string(), version: z.string() }),
  /** The signing key: "sha256:" and the hex SHA-256 of its SubjectPublicKeyInfo (DER). */
  signer: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  files: z.array(FileEntry).max(MAX_FILES),
});
export type BundleManifest = z.infer<typeof BundleManifest>;

export const BundleSignature = z.strictObject({
  algorithm: z.literal('ed25519'),
  signer: z.string(),
  signature: z.string().regex(/^[A-Za-z0-9+/]+=*$/),
});

/** A public key's name in bundles and the audit log: "sha256:" + SHA-256 of its SPKI DER. */
export function keyFingerprint(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return `sha256:${createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')}`;
}

/** Reads an Ed25519 private key (PKCS#8 PEM) from a file only its owner may read. */
export function readSigningKey(file: string): KeyObject {
  const st = lstatSync(file);
  if (!st.isFile()) throw new OpError('InvalidArgument', `key ${file} is not a regular file`, { file });
  if ((st.mode & 0o077) !== 0) {
    throw new OpError(
      'PermissionDenied',
      `key ${file} has mode ${(st.mode & 0o777).toString(8)}: a private key must be readable by its owner only (chmod 600 ${file})`,
      { file },
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(file));
  } catch (e) {
    throw new OpError(
      'InvalidArgument',
      `key ${file} is not a PEM private key: ${e instanceof Error ? e.message : String(e)}`,
      {
        file,
      },
    );
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new OpError(
      'InvalidArgument',
      `key ${file} is an ${key.asymmetricKeyType ?? 'unknown'} key, not Ed25519 (openssl genpkey -algorithm ed25519)`,
      { file },
    );
  }
  return key;
}

/** The files of a plugin directory, relative paths sorted; symlinks and anything but files and directories are refused. */
export function pluginDirFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(dir, path));
      if (st.isDirectory()) walk(path);
      else if (st.isFile()) out.push(path);
      else
        throw new OpError(
          'InvalidArgument',
          `${join(dir, path)} is not a plain file or directory: a bundle holds plain files only`,
          { file: join(dir, path) },
        );
    }
  };
  walk('');
  return out;
}

/** Packs a plugin directory into a signed bundle (the archive's bytes and its hash). */
export function packBundle(
  dir: string,
  key: KeyObject,
): { archive: Buffer; hash: string; manifest: BundleManifest } {
  const paths = pluginDirFiles(dir);
  for (const p of paths) {
    const problem = pathProblem(p);
    if (problem !== undefined)
      throw new OpError('InvalidArgument', `${dir}: ${problem}`, { file: join(dir, p) });
  }
  if (!paths.includes(PLUGIN_TOML))
    throw new OpError('InvalidArgument', `${dir} has no ${PLUGIN_TOML}`, { file: dir });
  const plugin = pluginIdentity(readFileSync(join(dir, PLUGIN_TOML), 'utf8'), join(dir, PLUGIN_TOML));
  const data = new Map(paths.map((p) => [p, readFileSync(join(dir, p))]));
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    plugin,
    signer: keyFingerprint(key),
    files: paths.map((p) => {
      const d = data.get(p) as Buffer;
      return { path: p, size: d.length, sha256: sha256(d) };
    }),
  };
  return assemble(manifest, data, key);
}

/** The archive of a manifest and its files, signed with key (also how tests build tampered bundles). */
export function assemble(
  manifest: BundleManifest,
  data: ReadonlyMap<string, Buffer>,
  key: KeyObject,
): { archive: Buffer; hash: string; manifest: BundleManifest } {
  const manifestBytes = Buffer.from(canonicalJson(manifest), 'utf8');
  const signature = {
    algorithm: 'ed25519',
    signer: manifest.signer,
    signature: sign(null, manifestBytes, key).toString('base64'),
  };
  const archive = writeTar([
    { path: MANIFEST_MEMBER, data: manifestBytes },
    { path: SIGNATURE_MEMBER, data: Buffer.from(canonicalJson(signature), 'utf8') },
    ...[...data].map(([path, d]) => ({ path: FILES_PREFIX + path, data: d })),
  ]);
  return { archive, hash: sha256(manifestBytes), manifest };
}

/**
 * The name and version in plugin.toml's [plugin] table. The core checks the whole manifest against
 * the platform's schema at install; packing needs only these two (and must not import the service).
 */
function pluginIdentity(text: string, file: string): { name: string; version: string } {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (e) {
    throw new OpError(
      'ParseError',
      `${file}: invalid TOML: ${e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e)}`,
      {
        file,
      },
    );
  }
  const table = (raw as { plugin?: { name?: unknown; version?: unknown } }).plugin;
  if (typeof table?.name !== 'string' || typeof table.version !== 'string') {
    throw new OpError('SchemaError', `${file}: [plugin] needs name and version`, { file });
  }
  return { name: table.name, version: table.version };
}
