import { createPublicKey } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { untrustedBecause } from '../plugins/trust.js';
import { keyFingerprint } from '../../common/bundles/format.js';
import type { TrustedKey } from './verify.js';

/** The trusted keys and what was not taken from the directory, and why. */
export interface TrustedKeys {
  dir: string;
  keys: TrustedKey[];
  ignored: { file: string; reason: string }[];
}

/**
 * The admin's trusted bundle signers: every `*.pem` public key (SPKI PEM, Ed25519) in dir. The
 * directory decides what code root runs, so it and each key file must be root's alone
 * (plugins/trust.ts); a key file that is not is ignored and named. Read at each install, so a key
 * added or removed counts without restarting the core.
 */
export function readTrustedKeys(dir: string): TrustedKeys {
  const out: TrustedKeys = { dir, keys: [], ignored: [] };
  if (!existsSync(dir)) return out;
  const why = untrustedBecause(dir, 'directory');
  if (why !== undefined) {
    out.ignored.push({ file: dir, reason: why });
    return out;
  }
  for (const name of readdirSync(dir).sort()) {
    if (!name.endsWith('.pem')) continue;
    const file = join(dir, name);
    const untrusted = untrustedBecause(file, 'file');
    if (untrusted !== undefined) {
      out.ignored.push({ file, reason: untrusted });
      continue;
    }
    try {
      const key = createPublicKey(readFileSync(file));
      if (key.asymmetricKeyType !== 'ed25519') {
        out.ignored.push({ file, reason: `an ${key.asymmetricKeyType ?? 'unknown'} key, not Ed25519` });
        continue;
      }
      out.keys.push({ fingerprint: keyFingerprint(key), file, key });
    } catch (e) {
      out.ignored.push({
        file,
        reason: `not a PEM public key: ${e instanceof Error ? e.message : String(e)}`,
      });
    }
  }
  return out;
}
