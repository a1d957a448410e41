import { constants, closeSync, fstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { createHmac, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';

// WireGuard keys as this plugin handles them. A private or preshared key exists in two places only:
// its file under one of the core's key directories, and the device. It is read here into a Buffer,
// handed to `wg` on stdin, and never put into a string that could reach a plan, an error or a log.

/** A key file's largest accepted size: a base64 key and a newline, with room for CRLF and spaces. */
const MAX_KEY_FILE = 128;
/** 32 bytes in canonical base64: 42 free characters, one whose low 2 bits are zero, "=". */
const CANONICAL_BASE64 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
// X25519 private keys as PKCS#8 DER: this fixed header, then the 32 raw bytes.
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** A key the plugin refuses or cannot find; the message names the file and why, never what is in it. */
export class KeyFileError extends Error {}

/** Resolves a document's key file name: absolute, or relative to the first key directory that holds it. */
export function resolveKeyFile(name: string, keyDirs: readonly string[]): string {
  if (isAbsolute(name)) return resolve(name);
  if (name.split(/[\\/]/).includes('..'))
    throw new KeyFileError(`key file "${name}": ".." is not allowed in a key file name`);
  for (const dir of keyDirs) {
    const candidate = join(dir, name);
    try {
      statSync(candidate);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  const first = keyDirs[0];
  return first === undefined ? resolve(name) : join(first, name);
}

/**
 * Reads a 32-byte key from a file the core may trust: under one of keyDirs (after resolving every
 * directory above it), opened without following a symlink, a regular file owned by root with no
 * permission for group or others, holding exactly one base64 key. Anything else is refused.
 */
export function readKeyFile(path: string, keyDirs: readonly string[]): Buffer {
  const abs = resolve(path);
  const dir = keyDirOf(abs, keyDirs);
  if (dir === undefined) {
    throw new KeyFileError(
      `key file ${abs} is outside the key directories (${keyDirs.join(', ') || 'none configured'}); ` +
        'set [plugins.wireguard] key_dirs in the core configuration to add one',
    );
  }
  let fd: number;
  try {
    fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new KeyFileError(
      code === 'ELOOP'
        ? `key file ${abs} is a symbolic link: refused`
        : `key file ${abs} cannot be opened (${code})`,
    );
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new KeyFileError(`key file ${abs} is not a regular file`);
    if (st.uid !== 0) throw new KeyFileError(`key file ${abs} is owned by uid ${st.uid}, not root: refused`);
    if ((st.mode & 0o077) !== 0) {
      throw new KeyFileError(
        `key file ${abs} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}: group or others may read it; chmod 0600 it`,
      );
    }
    if (st.size > MAX_KEY_FILE)
      throw new KeyFileError(`key file ${abs} is ${st.size} bytes: not a WireGuard key`);
    const buf = Buffer.alloc(MAX_KEY_FILE + 1);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const key = decodeKey(buf.subarray(0, n).toString('latin1').trim());
    buf.fill(0);
    if (key === undefined) {
      throw new KeyFileError(
        `key file ${abs} does not hold a WireGuard key (32 bytes in base64, e.g. from op-dbus wireguard genkey)`,
      );
    }
    return key;
  } finally {
    closeSync(fd);
  }
}

/** The key directory abs lies in (comparing real paths, so a symlinked directory cannot lead out), or undefined. */
function keyDirOf(abs: string, keyDirs: readonly string[]): string | undefined {
  let parent: string;
  try {
    parent = realpathSync(resolve(abs, '..'));
  } catch {
    return undefined;
  }
  for (const dir of keyDirs) {
    let real: string;
    try {
      real = realpathSync(dir);
    } catch {
      continue;
    }
    const rel = relative(real, parent);
    if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel) && !rel.split(sep).includes('..')))
      return dir;
  }
  return undefined;
}

/** A canonical base64 key decoded, or undefined when it is not exactly one. */
export function decodeKey(text: string): Buffer | undefined {
  return CANONICAL_BASE64.test(text) ? Buffer.from(text, 'base64') : undefined;
}

/** The X25519 public key (base64) of a raw private key. */
export function publicKeyOf(privateKey: Buffer): string {
  const der = Buffer.concat([PKCS8_X25519, privateKey]);
  try {
    const jwk = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({
      format: 'jwk',
    });
    if (typeof jwk.x !== 'string') throw new KeyFileError('X25519 produced no public key');
    return Buffer.from(jwk.x, 'base64url').toString('base64');
  } finally {
    der.fill(0);
  }
}

/**
 * An opaque stand-in for a secret in the plugin's state: an HMAC under a key that lives only in this
 * process, so a preshared key can be compared with the device's without being stored or shown.
 */
const processKey = randomBytes(32);
export function secretDigest(secret: Buffer): string {
  return 'hmac:' + createHmac('sha256', processKey).update(secret).digest('hex').slice(0, 24);
}
