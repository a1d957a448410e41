import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { HASH_SIZE } from './merkle.js';

/**
 * C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, and the tlog-checkpoint body
 * (c2sp.org/tlog-checkpoint) they carry. Parsers never throw: a note or key comes from outside, so
 * every way it can be wrong is a `{ ok: false, reason }` naming the line.
 */

/** The signature type byte of Ed25519 in signed-note key hashes and encoded keys. */
const ED25519 = 0x01;
const EM_DASH = '\u2014';
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

export type Parsed<T> = ({ ok: true } & T) | { ok: false; reason: string };

/** A signed-note key name: non-empty, no spaces, no `+`. */
export function isKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name) && !name.includes(EM_DASH);
}

/** The 4-byte key hash of an Ed25519 key: SHA-256(name || "\n" || 0x01 || key)[:4]. */
export function keyHash(name: string, publicKey: Uint8Array): Buffer {
  return createHash('sha256')
    .update(`${name}\n`, 'utf8')
    .update(Buffer.from([ED25519]))
    .update(publicKey)
    .digest()
    .subarray(0, 4);
}

/** An Ed25519 note signer: the key's name and its private key. */
export interface NoteSigner {
  name: string;
  privateKey: KeyObject;
  publicKey: Uint8Array;
}

/** A verifier: name, key hash and public key, as in a verifier key string. */
export interface NoteVerifier {
  name: string;
  hash: Buffer;
  publicKey: KeyObject;
  raw: Uint8Array;
}

/** A signer from a 32-byte Ed25519 seed. */
export function signerFromSeed(name: string, seed: Uint8Array): NoteSigner {
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { name, privateKey, publicKey: spki.subarray(spki.length - 32) };
}

/** The private seed of a signer (for storing it). */
export function seedOf(signer: NoteSigner): Buffer {
  const der = signer.privateKey.export({ format: 'der', type: 'pkcs8' });
  return der.subarray(der.length - 32);
}

/** The signer key string: `PRIVATE+KEY+<name>+<hex keyhash>+<base64(0x01 || seed)>`. */
export function encodeSignerKey(signer: NoteSigner): string {
  const hash = keyHash(signer.name, signer.publicKey).toString('hex');
  const key = Buffer.concat([Buffer.from([ED25519]), seedOf(signer)]).toString('base64');
  return `PRIVATE+KEY+${signer.name}+${hash}+${key}`;
}

/** Parses a signer key string written by encodeSignerKey. */
export function parseSignerKey(text: string): Parsed<{ signer: NoteSigner }> {
  const parts = splitFields(text.trim(), 5);
  if (parts === undefined || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY') {
    return { ok: false, reason: 'not a signer key (expected PRIVATE+KEY+<name>+<hash>+<key>)' };
  }
  const [, , name, hash, key] = parts as [string, string, string, string, string];
  const raw = strictBase64(key);
  if (!isKeyName(name)) return { ok: false, reason: `signer key name ${JSON.stringify(name)} is not valid` };
  if (raw === undefined || raw.length !== 33 || raw[0] !== ED25519) {
    return { ok: false, reason: 'signer key is not base64 of 0x01 and a 32-byte Ed25519 seed' };
  }
  const signer = signerFromSeed(name, raw.subarray(1));
  if (keyHash(name, signer.publicKey).toString('hex') !== hash) {
    return { ok: false, reason: 'signer key hash does not match its key' };
  }
  return { ok: true, signer };
}

/** The verifier key string `<name>+<hex keyhash>+<base64(0x01 || public key)>`. */
export function encodeVerifierKey(signer: NoteSigner): string {
  const hash = keyHash(signer.name, signer.publicKey).toString('hex');
  const key = Buffer.concat([Buffer.from([ED25519]), signer.publicKey]).toString('base64');
  return `${signer.name}+${hash}+${key}`;
}

/** Parses a verifier key string; the reason names what is wrong. */
export function parseVerifierKey(text: string): Parsed<{ verifier: NoteVerifier }> {
  // The key's base64 may itself hold '+': only the first two '+' separate fields.
  const parts = splitFields(text.trim(), 3);
  if (parts === undefined) return { ok: false, reason: 'not a verifier key (expected <name>+<hash>+<key>)' };
  const [name, hash, key] = parts as [string, string, string];
  if (!isKeyName(name))
    return { ok: false, reason: `verifier key name ${JSON.stringify(name)} is not valid` };
  if (!/^[0-9a-f]{8}$/.test(hash)) return { ok: false, reason: 'verifier key hash is not 8 hex digits' };
  const raw = strictBase64(key);
  if (raw === undefined) return { ok: false, reason: 'verifier key is not base64' };
  if (raw.length !== 33 || raw[0] !== ED25519) {
    return { ok: false, reason: 'verifier key is not an Ed25519 key (0x01 and 32 bytes)' };
  }
  const pub = raw.subarray(1);
  if (keyHash(name, pub).toString('hex') !== hash) {
    return { ok: false, reason: 'verifier key hash does not match its name and key' };
  }
  const publicKey = createPublicKey({ key: Buffer.concat([SPKI_ED25519, pub]), format: 'der', type: 'spki' });
  return { ok: true, verifier: { name, hash: Buffer.from(hash, 'hex'), publicKey, raw: pub } };
}

/** A tlog checkpoint: origin, tree size and root hash. */
export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
}

/** The checkpoint body: `origin\nsize\nbase64(root)\n`. */
export function checkpointBody(cp: Checkpoint): string {
  return `${cp.origin}\n${cp.size}\n${cp.root.toString('base64')}\n`;
}

/** Signs a note text (which must end in a newline) and returns the whole signed note. */
export function signNote(text: string, signer: NoteSigner): string {
  const sig = sign(null, Buffer.from(text, 'utf8'), signer.privateKey);
  const line = Buffer.concat([keyHash(signer.name, signer.publicKey), sig]).toString('base64');
  return `${text}\n${EM_DASH} ${signer.name} ${line}\n`;
}

/** A note split into its text and signature lines, each signature line checked for form. */
interface SplitNote {
  text: string;
  signatures: { lineNo: number; name: string; raw: Buffer }[];
}

/** Splits a signed note at its blank line and parses the signature lines. */
export function splitNote(note: string): Parsed<SplitNote> {
  if (!note.endsWith('\n')) return { ok: false, reason: 'note does not end with a newline (truncated?)' };
  const split = note.indexOf('\n\n');
  if (split < 0) return { ok: false, reason: 'note has no blank line before its signatures' };
  const text = note.slice(0, split + 1);
  const sigLines = note.slice(split + 2, -1).split('\n');
  const textLines = text.split('\n').length - 1;
  const signatures: SplitNote['signatures'] = [];
  for (let i = 0; i < sigLines.length; i++) {
    const lineNo = textLines + 2 + i;
    const line = sigLines[i] as string;
    const m = /^\u2014 (\S+) (\S+)$/u.exec(line);
    if (m === null) {
      return {
        ok: false,
        reason: `line ${lineNo}: not a signature line (\`— <name> <base64>\`): ${excerpt(line)}`,
      };
    }
    const [, name, b64] = m as unknown as [string, string, string];
    const raw = strictBase64(b64);
    if (raw === undefined || raw.length < 5) {
      return {
        ok: false,
        reason: `line ${lineNo}: signature of ${name} is not base64 of a key hash and a signature`,
      };
    }
    signatures.push({ lineNo, name, raw });
  }
  return { ok: true, text, signatures };
}

/** Checks that a split note carries a valid signature by the verifier (others are allowed and ignored). */
function checkSignatures(note: SplitNote, verifier: NoteVerifier): Parsed<object> {
  let verified = false;
  for (const { lineNo, name, raw } of note.signatures) {
    if (name !== verifier.name || !raw.subarray(0, 4).equals(verifier.hash)) continue;
    if (raw.length !== 4 + 64) {
      return {
        ok: false,
        reason: `line ${lineNo}: Ed25519 signature of ${name} is ${raw.length - 4} bytes, not 64`,
      };
    }
    if (!verify(null, Buffer.from(note.text, 'utf8'), verifier.publicKey, raw.subarray(4))) {
      return {
        ok: false,
        reason: `line ${lineNo}: the signature of ${name} does not verify (forged or altered note)`,
      };
    }
    verified = true;
  }
  if (!verified) {
    return {
      ok: false,
      reason: `note has no signature by the key ${verifier.name}+${verifier.hash.toString('hex')}`,
    };
  }
  return { ok: true };
}

/** Opens a signed note with one trusted verifier and returns its text. */
export function openNote(note: string, verifier: NoteVerifier): Parsed<{ text: string }> {
  const split = splitNote(note);
  if (!split.ok) return split;
  const checked = checkSignatures(split, verifier);
  if (!checked.ok) return checked;
  return { ok: true, text: split.text };
}

/** Parses a checkpoint body (the text of a note); extension lines after the root are allowed and ignored. */
export function parseCheckpointBody(text: string): Parsed<{ checkpoint: Checkpoint }> {
  const lines = text.split('\n');
  if (lines[lines.length - 1] !== '' || lines.length < 4) {
    return { ok: false, reason: 'checkpoint needs at least an origin, a size and a root hash line' };
  }
  const [origin, size, root] = lines as [string, string, string];
  if (origin === '') return { ok: false, reason: 'line 1: origin is empty' };
  if (!/^(0|[1-9][0-9]*)$/.test(size) || !Number.isSafeInteger(Number(size))) {
    return { ok: false, reason: `line 2: tree size is not a decimal number: ${excerpt(size)}` };
  }
  const rootBytes = strictBase64(root);
  if (rootBytes === undefined || rootBytes.length !== HASH_SIZE) {
    return { ok: false, reason: `line 3: root is not the base64 of a 32-byte hash: ${excerpt(root)}` };
  }
  for (let i = 3; i < lines.length - 1; i++) {
    if (lines[i] === '') return { ok: false, reason: `line ${i + 1}: empty extension line` };
  }
  return { ok: true, checkpoint: { origin, size: Number(size), root: rootBytes } };
}

/**
 * Opens a signed checkpoint with the verifier: form first (so garbage is named by line), then the
 * origin against the key's name, then the signature.
 */
export function openCheckpoint(note: string, verifier: NoteVerifier): Parsed<{ checkpoint: Checkpoint }> {
  const split = splitNote(note);
  if (!split.ok) return split;
  const parsed = parseCheckpointBody(split.text);
  if (!parsed.ok) return parsed;
  if (parsed.checkpoint.origin !== verifier.name) {
    return {
      ok: false,
      reason: `checkpoint origin ${JSON.stringify(parsed.checkpoint.origin)} is not the key's name ${JSON.stringify(verifier.name)}`,
    };
  }
  const checked = checkSignatures(split, verifier);
  if (!checked.ok) return checked;
  return parsed;
}

/** Splits at the first n - 1 '+' signs (the last field, base64, may hold more). */
function splitFields(text: string, n: number): string[] | undefined {
  const out: string[] = [];
  let rest = text;
  for (let i = 0; i < n - 1; i++) {
    const at = rest.indexOf('+');
    if (at < 0) return undefined;
    out.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  out.push(rest);
  return out;
}

/** Base64 that re-encodes to itself (no whitespace, no missing or extra padding), or undefined. */
export function strictBase64(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** A line quoted for a message, cut short. */
export function excerpt(line: string): string {
  return JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}…` : line);
}
