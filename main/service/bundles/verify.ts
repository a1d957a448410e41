// The core's check of an untrusted bundle, all of it in memory and in this order, before anything
// is written: the archive's structure (plain files only, no path that escapes), the signer (a
// trusted key) and its signature over bundle.json, each file against the manifest (nothing missing,
// nothing extra, every size and hash), and plugin.toml against the platform's manifest schema.

import { verify, type KeyObject } from 'node:crypto';
import type { z } from 'zod';
import {
  BundleManifest,
  BundleSignature,
  bundleRefused,
  FILES_PREFIX,
  MANIFEST_MEMBER,
  MAX_BUNDLE_BYTES,
  pathProblem,
  PLUGIN_TOML,
  sha256,
  SIGNATURE_MEMBER,
  type BundleCheck,
} from '../../common/bundles/format.js';
import { readTar } from '../../common/bundles/tar.js';
import { parseManifest, type ManifestFile } from '../plugins/manifest.js';

/** The trusted key that signed a bundle: its fingerprint and where the admin put it. */
export interface TrustedKey {
  fingerprint: string;
  file: string;
  key: KeyObject;
}

/** A bundle that passed every check, with its files in memory. */
export interface VerifiedBundle {
  /** SHA-256 of bundle.json: the bundle's name. */
  hash: string;
  manifest: BundleManifest;
  manifestBytes: Buffer;
  signatureBytes: Buffer;
  signer: TrustedKey;
  plugin: ManifestFile;
  /** Path (relative to the plugin directory) to content, in the manifest's order. */
  files: Map<string, Buffer>;
}

/**
 * Checks a bundle completely (see the top of this file) against the trusted keys; throws a
 * BundleRefused naming the first thing wrong. Writes nothing.
 */
export function verifyBundle(
  archive: Buffer,
  trusted: readonly TrustedKey[],
  trustedFrom: string,
): VerifiedBundle {
  if (archive.length > MAX_BUNDLE_BYTES) {
    throw bundleRefused(
      'format',
      `${archive.length} bytes is more than the ${MAX_BUNDLE_BYTES} a bundle may have`,
    );
  }
  const entries = readTar(archive);
  // structure first: every member a plain file at a path that stays inside the bundle
  const members = new Map<string, Buffer>();
  for (const e of entries) {
    const where = pathProblem(e.path.replace(/\/$/, ''));
    if (where !== undefined) throw bundleRefused('path', `member ${where}`, e.path);
    if (e.type === 'symlink' || e.type === 'hardlink') {
      throw bundleRefused(
        'symlink',
        `member ${e.path} is a ${e.type === 'symlink' ? 'symbolic' : 'hard'} link (to ${JSON.stringify(e.linkTarget)}): a bundle holds plain files only`,
        e.path,
      );
    }
    if (e.type === 'char-device' || e.type === 'block-device' || e.type === 'fifo') {
      throw bundleRefused(
        'device',
        `member ${e.path} is a ${e.type.replace('-', ' ')} node: a bundle holds plain files only`,
        e.path,
      );
    }
    if (e.type === 'directory') continue;
    if (e.type !== 'file') {
      throw bundleRefused(
        'type',
        `member ${e.path} has tar type "${e.flag}": a bundle holds plain files only`,
        e.path,
      );
    }
    if (members.has(e.path)) throw bundleRefused('format', `member ${e.path} appears twice`, e.path);
    members.set(e.path, e.data);
  }
  const manifestBytes = members.get(MANIFEST_MEMBER);
  const signatureBytes = members.get(SIGNATURE_MEMBER);
  if (manifestBytes === undefined) throw bundleRefused('format', `it has no ${MANIFEST_MEMBER}`);
  if (signatureBytes === undefined)
    throw bundleRefused('signature', `it has no ${SIGNATURE_MEMBER} (unsigned)`);
  const manifest = parseJson(BundleManifest, manifestBytes, MANIFEST_MEMBER, 'format');
  const signature = parseJson(BundleSignature, signatureBytes, SIGNATURE_MEMBER, 'signature');
  // the signer: a trusted key whose signature over bundle.json's bytes verifies
  if (signature.signer !== manifest.signer) {
    throw bundleRefused(
      'signature',
      `${SIGNATURE_MEMBER} names signer ${signature.signer} but ${MANIFEST_MEMBER} names ${manifest.signer}`,
    );
  }
  const signer = trusted.find((k) => k.fingerprint === manifest.signer);
  if (signer === undefined) {
    throw bundleRefused(
      'signer',
      `signed by key ${manifest.signer}, which is not a trusted key (${trusted.length === 0 ? 'none are' : `${trusted.length} are`} in ${trustedFrom})`,
    );
  }
  if (!verify(null, manifestBytes, signer.key, Buffer.from(signature.signature, 'base64'))) {
    throw bundleRefused(
      'signature',
      `the signature by ${signer.fingerprint} (${signer.file}) does not verify over ${MANIFEST_MEMBER}`,
    );
  }
  // the files: exactly those listed, each with its size and hash
  const files = new Map<string, Buffer>();
  for (const f of manifest.files) {
    const problem = pathProblem(f.path);
    if (problem !== undefined) throw bundleRefused('path', `${MANIFEST_MEMBER} lists ${problem}`, f.path);
    if (files.has(f.path)) throw bundleRefused('format', `${MANIFEST_MEMBER} lists ${f.path} twice`, f.path);
    const data = members.get(FILES_PREFIX + f.path);
    if (data === undefined)
      throw bundleRefused('missing', `${f.path} is in the manifest but not in the bundle`, f.path);
    if (data.length !== f.size || sha256(data) !== f.sha256) {
      throw bundleRefused(
        'hash',
        `${f.path} does not match the manifest (SHA-256 ${sha256(data)}, ${data.length} bytes; the manifest says ${f.sha256}, ${f.size} bytes)`,
        f.path,
      );
    }
    files.set(f.path, data);
  }
  for (const path of members.keys()) {
    if (path === MANIFEST_MEMBER || path === SIGNATURE_MEMBER) continue;
    if (!path.startsWith(FILES_PREFIX) || !files.has(path.slice(FILES_PREFIX.length))) {
      throw bundleRefused('unlisted', `${path} is not in the manifest`, path);
    }
  }
  for (const path of files.keys()) {
    const parent = [...files.keys()].find((other) => other.startsWith(`${path}/`));
    if (parent !== undefined)
      throw bundleRefused('path', `${path} is both a file and the directory of ${parent}`, path);
  }
  const hash = sha256(manifestBytes);
  const plugin = checkPluginManifest(files, manifest, hash);
  return { hash, manifest, manifestBytes, signatureBytes, signer, plugin, files };
}

function parseJson<T extends z.ZodType>(
  schema: T,
  bytes: Buffer,
  member: string,
  check: BundleCheck,
): z.output<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw bundleRefused(
      check,
      `${member} is not JSON: ${e instanceof Error ? e.message : String(e)}`,
      member,
    );
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw bundleRefused(
      check,
      `${member}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
      member,
    );
  }
  return parsed.data as z.output<T>;
}

/** plugin.toml passes the platform's manifest schema, names the bundle's plugin and version, and its entry and schema files are in the bundle. */
function checkPluginManifest(
  files: Map<string, Buffer>,
  manifest: BundleManifest,
  hash: string,
): ManifestFile {
  const toml = files.get(PLUGIN_TOML);
  if (toml === undefined) throw bundleRefused('manifest', `it has no ${PLUGIN_TOML}`);
  let plugin: ManifestFile;
  try {
    plugin = parseManifest(toml.toString('utf8'), `bundle ${hash.slice(0, 12)}:${PLUGIN_TOML}`);
  } catch (e) {
    throw bundleRefused('manifest', e instanceof Error ? e.message : String(e), PLUGIN_TOML);
  }
  if (plugin.plugin.name !== manifest.plugin.name || plugin.plugin.version !== manifest.plugin.version) {
    throw bundleRefused(
      'manifest',
      `${PLUGIN_TOML} says ${plugin.plugin.name} ${plugin.plugin.version}, ${MANIFEST_MEMBER} says ${manifest.plugin.name} ${manifest.plugin.version}`,
      PLUGIN_TOML,
    );
  }
  for (const own of [plugin.plugin.entry, plugin.plugin.schema]) {
    if (own !== undefined && !files.has(own)) {
      throw bundleRefused('manifest', `${PLUGIN_TOML} names ${own}, which is not in the bundle`, PLUGIN_TOML);
    }
  }
  return plugin;
}
