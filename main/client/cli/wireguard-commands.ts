import { generateKeyPairSync } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fsyncSync,
  openSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { OpError } from '../../common/contract/index.js';
import { print, type JsonFlag } from './io.js';

// `op-dbus wireguard genkey FILE`: a new private key in a file the wireguard plugin accepts (root's,
// mode 0600, written without following a symlink and never over an existing file), and its public
// key printed, so a mesh document can be assembled from what each node prints. Runs locally, as
// root: the key never crosses D-Bus, never reaches the core's audit log or the console.

/** A new X25519 private key (raw, clamped as WireGuard does) and its public key, both base64. */
export function newKeyPair(): { privateKey: Buffer; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const d = privateKey.export({ format: 'jwk' }).d;
  const x = publicKey.export({ format: 'jwk' }).x;
  if (d === undefined || x === undefined) throw new OpError('Internal', 'X25519 produced no key');
  const raw = Buffer.from(d, 'base64url');
  // X25519 clamps the scalar on use; storing it clamped makes `wg show private-key` print the same bytes
  raw[0] = (raw[0] ?? 0) & 248;
  raw[31] = ((raw[31] ?? 0) & 127) | 64;
  return { privateKey: raw, publicKey: Buffer.from(x, 'base64url').toString('base64') };
}

/** Writes a new private key to file (refusing one that exists, or a symlink) and returns its public key. */
export function writeNewKey(file: string): string {
  const path = resolve(file);
  if (process.getuid?.() !== 0) {
    throw new OpError(
      'InvalidArgument',
      `genkey must run as root: the core accepts only root-owned key files (${path})`,
    );
  }
  let fd: number;
  try {
    fd = openSync(
      path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new OpError(
      'InvalidArgument',
      code === 'EEXIST'
        ? `${path} exists: genkey never overwrites a key (remove it first to rotate)`
        : `${path}: cannot create (${code ?? String(e)})`,
      { file: path },
    );
  }
  const { privateKey, publicKey } = newKeyPair();
  const text = Buffer.from(privateKey.toString('base64') + '\n');
  try {
    fchownSync(fd, 0, 0);
    fchmodSync(fd, 0o600);
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(path);
    throw e;
  } finally {
    privateKey.fill(0);
    text.fill(0);
  }
  closeSync(fd);
  return publicKey;
}

/** `op-dbus wireguard ...`: key management that needs no core. */
export function wireguardCommand(): Command {
  const wg = new Command('wireguard').description('WireGuard keys for the wireguard plugin (no core needed)');
  wg.command('genkey')
    .description('write a new private key to FILE (root, 0600, never overwriting) and print its public key')
    .argument('<file>', 'the new key file, e.g. /etc/op-dbus/keys/wg0.key')
    .option('--json', 'machine-readable output')
    .action((file: string, o: JsonFlag) => {
      const publicKey = writeNewKey(file);
      print(o.json, { file: resolve(file), public_key: publicKey }, publicKey);
    });
  return wg;
}
