import { createHash, hash } from 'node:crypto';

const LEAF_PREFIX = Buffer.from([0x00]);
// One scratch buffer for node hashes: crypto.hash over 65 bytes is ~2.5x faster than a Hash object.
const NODE_INPUT = Buffer.alloc(65);
NODE_INPUT[0] = 0x01;

/** RFC 6962 leaf hash: SHA-256(0x00 || leaf bytes). */
export function leafHash(leaf: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(leaf).digest();
}

/** RFC 6962 leaf hash of a string's UTF-8 bytes, in one call (the append and verify hot path). */
export function leafHashOfText(text: string): Buffer {
  return hash('sha256', `\u0000${text}`, 'buffer');
}

/** leafHashOfText as lowercase hex: no Buffer is made, ~2x cheaper per call (the verify walk compares hex). */
export function leafHashHexOfText(text: string): string {
  return hash('sha256', `\u0000${text}`, 'hex');
}

/** nodeHash of two hashes given (and returned) as 64 lowercase hex digits. */
export function nodeHashHex(leftHex: string, rightHex: string): string {
  NODE_INPUT.write(leftHex, 1, 'hex');
  NODE_INPUT.write(rightHex, 33, 'hex');
  return hash('sha256', NODE_INPUT, 'hex');
}

/** RFC 6962 interior node hash: SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== 32 || right.length !== 32) {
    return createHash('sha256')
      .update(Buffer.from([0x01]))
      .update(left)
      .update(right)
      .digest();
  }
  NODE_INPUT.set(left, 1);
  NODE_INPUT.set(right, 33);
  return hash('sha256', NODE_INPUT, 'buffer');
}

/** The root of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT = createHash('sha256').digest();
