import { OpError } from '../contract/errors.js';
import { EMPTY_ROOT, nodeHash } from './rfc6962.js';

/**
 * RFC 6962 / RFC 9162 Merkle tree over leaf hashes, with inclusion and consistency proofs.
 *
 * Error convention: proof *generation* (MerkleTree methods) throws OpError('InvalidArgument') for
 * sizes or indices the caller should not have asked for. Proof *verification* never throws: proofs,
 * sizes and roots come from outside, so every way they can be wrong is a `{ ok: false, reason }`
 * naming what was wrong. `assertVerified` turns such a result into OpError('AuditCorrupt').
 *
 * Sizes and indices are JavaScript numbers and must be safe integers; bit operations are done with
 * arithmetic rather than `>>` because trees may outgrow 2^31 leaves long before 2^53.
 */

/** Length in bytes of every hash in the tree (SHA-256). */
export const HASH_SIZE = 32;

/** The outcome of verifying a proof: ok, or the reason it failed. */
export type VerifyResult = { ok: true } | { ok: false; reason: string };

/** The root computed from an inclusion proof, or the reason none could be computed. */
export type RootResult = { ok: true; root: Buffer } | { ok: false; reason: string };

/** Throws OpError('AuditCorrupt') with the failure reason unless the proof verified. */
export function assertVerified(result: VerifyResult | RootResult, what = 'Merkle proof'): void {
  if (!result.ok) throw new OpError('AuditCorrupt', `${what} rejected: ${result.reason}`);
}

function half(x: number): number {
  return Math.floor(x / 2);
}

function isOdd(x: number): boolean {
  return x % 2 === 1;
}

function pow2(level: number): number {
  return 2 ** level;
}

/** Number of bits needed to write x (0 for 0). */
function bitLength(x: number): number {
  let n = 0;
  for (let v = x; v > 0; v = half(v)) n++;
  return n;
}

function popCount(x: number): number {
  let n = 0;
  for (let v = x; v > 0; v = half(v)) if (isOdd(v)) n++;
  return n;
}

function trailingZeros(x: number): number {
  let n = 0;
  for (let v = x; v > 0 && !isOdd(v); v = half(v)) n++;
  return n;
}

/** XOR of two safe integers, done on the 32-bit halves so values above 2^32 are handled. */
function xor(a: number, b: number): number {
  const hi = ((Math.floor(a / 2 ** 32) ^ Math.floor(b / 2 ** 32)) >>> 0) * 2 ** 32;
  return hi + (((a % 2 ** 32) ^ (b % 2 ** 32)) >>> 0);
}

/**
 * Levels below which the path of `index` differs from the path of the last leaf `size - 1`.
 * Siblings on those levels are "inner" (any side); above them the path runs along the right
 * border, where only left siblings exist.
 */
function innerProofSize(index: number, size: number): number {
  return bitLength(xor(index, size - 1));
}

/** Exact number of hashes in the inclusion proof of `index` in a tree of `size` (index < size). */
function inclusionProofLength(index: number, size: number): number {
  const inner = innerProofSize(index, size);
  return inner + popCount(Math.floor(index / pow2(inner)));
}

/** Exact number of hashes in the consistency proof from `oldSize` to `newSize` (0 < old < new). */
function consistencyProofLength(oldSize: number, newSize: number): number {
  const shift = trailingZeros(oldSize);
  const inner = innerProofSize(oldSize - 1, newSize);
  const border = popCount(Math.floor((oldSize - 1) / pow2(inner)));
  const seed = oldSize === pow2(shift) ? 0 : 1;
  return seed + inner - shift + border;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

function isSize(x: number): boolean {
  return Number.isSafeInteger(x) && x >= 0;
}

/** The first hash in `proof` that is not HASH_SIZE bytes long, as a failure reason. */
function badProofHash(proof: readonly Uint8Array[]): string | undefined {
  const i = proof.findIndex((h) => h.length !== HASH_SIZE);
  if (i < 0) return undefined;
  return `proof hash ${i} is ${proof[i]?.length} bytes, expected ${HASH_SIZE}`;
}

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

/**
 * Root of a tree of `size` leaves given the hash of leaf `index` and its inclusion proof, by the
 * algorithm of RFC 9162 section 2.1.3.2.
 */
export function rootFromInclusionProof(
  leafHash: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
): RootResult {
  if (!isSize(index)) return fail(`index ${index} is not a non-negative safe integer`);
  if (!isSize(size)) return fail(`tree size ${size} is not a non-negative safe integer`);
  if (index >= size) return fail(`index ${index} is not below tree size ${size}`);
  if (leafHash.length !== HASH_SIZE) {
    return fail(`leaf hash is ${leafHash.length} bytes, expected ${HASH_SIZE}`);
  }
  // The RFC loop below also rejects wrong lengths, but only as "too long"/"too short"; checking
  // up front lets the reason say what was expected.
  const expected = inclusionProofLength(index, size);
  if (proof.length !== expected) {
    return fail(
      `proof has ${proof.length} hashes, expected ${expected} for index ${index} in tree of size ${size}`,
    );
  }
  const bad = badProofHash(proof);
  if (bad !== undefined) return fail(bad);

  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leafHash);
  for (const p of proof) {
    if (sn === 0) return fail('proof is longer than the path to the root');
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      // fn is the last node of its level without a right sibling: it is promoted unchanged.
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) return fail('proof is shorter than the path to the root');
  return { ok: true, root: r };
}

/** Verifies that `leafHash` is leaf `index` of the `size`-leaf tree with root `root` (RFC 9162 2.1.3.2). */
export function verifyInclusion(
  leafHash: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): VerifyResult {
  const computed = rootFromInclusionProof(leafHash, index, size, proof);
  if (!computed.ok) return computed;
  if (!bytesEqual(computed.root, root)) {
    return fail(`proof for index ${index} leads to a different root than the one given for size ${size}`);
  }
  return { ok: true };
}

/**
 * Verifies that the tree of `oldSize` leaves with root `oldRoot` is a prefix of the tree of
 * `newSize` leaves with root `newRoot` (RFC 9162 2.1.4.2).
 *
 * Beyond the RFC loop: oldSize == newSize needs an empty proof and byte-equal roots (nothing is
 * hashed, so root lengths are not checked); oldSize == 0 is always rejected, since every tree
 * extends the empty tree and such a "proof" would prove nothing (as transparency-dev/merkle does).
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: readonly Uint8Array[],
): VerifyResult {
  if (!isSize(oldSize)) return fail(`old size ${oldSize} is not a non-negative safe integer`);
  if (!isSize(newSize)) return fail(`new size ${newSize} is not a non-negative safe integer`);
  if (oldSize > newSize) return fail(`old size ${oldSize} is larger than new size ${newSize}`);
  if (oldSize === 0) return fail('consistency with the empty tree proves nothing (old size is 0)');
  if (oldSize === newSize) {
    if (proof.length !== 0) return fail(`proof has ${proof.length} hashes, expected 0 for equal sizes`);
    if (!bytesEqual(oldRoot, newRoot)) return fail(`roots differ for the same size ${oldSize}`);
    return { ok: true };
  }
  if (proof.length === 0) return fail('proof is empty');
  const expected = consistencyProofLength(oldSize, newSize);
  if (proof.length !== expected) {
    return fail(
      `proof has ${proof.length} hashes, expected ${expected} from size ${oldSize} to size ${newSize}`,
    );
  }
  const bad = badProofHash(proof);
  if (bad !== undefined) return fail(bad);
  if (oldRoot.length !== HASH_SIZE) return fail(`old root is ${oldRoot.length} bytes, expected ${HASH_SIZE}`);
  if (newRoot.length !== HASH_SIZE) return fail(`new root is ${newRoot.length} bytes, expected ${HASH_SIZE}`);

  // When oldSize is a power of two the old tree is one complete subtree of the new one, so its
  // root is the starting node and the proof omits it.
  const path: readonly Uint8Array[] = oldSize === pow2(trailingZeros(oldSize)) ? [oldRoot, ...proof] : proof;
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  const first = path[0];
  if (first === undefined) return fail('proof is empty');
  let fr: Buffer = Buffer.from(first);
  let sr: Buffer = Buffer.from(first);
  for (let i = 1; i < path.length; i++) {
    const c = path[i] as Uint8Array;
    if (sn === 0) return fail('proof is longer than the path to the new root');
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) return fail('proof is shorter than the path to the new root');
  if (!bytesEqual(fr, oldRoot)) return fail(`proof does not lead to the old root of size ${oldSize}`);
  if (!bytesEqual(sr, newRoot)) return fail(`proof does not lead to the new root of size ${newSize}`);
  return { ok: true };
}

/** Hashes of one tree level, packed HASH_SIZE bytes apiece, with room to grow. */
interface Level {
  buf: Buffer;
  count: number;
}

const INITIAL_CAPACITY = 64;

/**
 * Proofs and historical roots over any store of complete-subtree hashes: node(level, i) is the hash
 * of leaves [i * 2^level, (i + 1) * 2^level). Any historical root and any proof is then O(log n)
 * lookups plus at most O(log n) hashes for the one incomplete subtree on the right border. The
 * in-memory MerkleTree and the audit log's SQLite-backed tree share this code.
 */
export abstract class MerkleNodes {
  /** Number of leaves in the tree. */
  abstract get size(): number;

  /** Hash of complete subtree `index` at `level`; only asked for subtrees that are complete. */
  protected abstract node(level: number, index: number): Uint8Array;

  /** Root hash of the tree as it was when it had `size` leaves (default: now). */
  root(size: number = this.size): Buffer {
    this.checkSize(size);
    if (size === 0) return Buffer.from(EMPTY_ROOT);
    return Buffer.from(this.rangeHash(0, size));
  }

  /** Inclusion proof of leaf `index` in the tree of `size` leaves (RFC 6962 PATH), leaf to root. */
  inclusionProof(index: number, size: number = this.size): Buffer[] {
    this.checkSize(size);
    this.checkIndex(index, size);
    return this.pathFrom(0, index, size).map((h) => Buffer.from(h));
  }

  /** Consistency proof from the tree of `oldSize` leaves to the tree of `newSize` (RFC 6962 PROOF). */
  consistencyProof(oldSize: number, newSize: number = this.size): Buffer[] {
    this.checkSize(newSize);
    this.checkSize(oldSize);
    if (oldSize === 0) throw new OpError('InvalidArgument', 'no consistency proof from the empty tree');
    if (oldSize > newSize) {
      throw new OpError('InvalidArgument', `old size ${oldSize} is larger than new size ${newSize}`);
    }
    if (oldSize === newSize) return [];
    // The old tree's last complete subtree, at level `shift`, is the node the new tree's proof
    // starts from; it is left out when it is the whole old tree, which the verifier already has.
    const shift = trailingZeros(oldSize);
    const start = Math.floor(oldSize / pow2(shift)) - 1;
    const proof: Uint8Array[] = oldSize === pow2(shift) ? [] : [this.node(shift, start)];
    proof.push(...this.pathFrom(shift, start, newSize));
    return proof.map((h) => Buffer.from(h));
  }

  /**
   * Siblings of node `index` at `level` up to the root of the tree of `size` leaves: first the
   * inner ones (below where the path meets the right border), then the left siblings along it.
   */
  private pathFrom(level: number, index: number, size: number): Uint8Array[] {
    const leafIndex = index * pow2(level);
    const inner = innerProofSize(leafIndex, size);
    const path: Uint8Array[] = [];
    for (let l = level; l < inner; l++) {
      const sibling = xor(Math.floor(leafIndex / pow2(l)), 1);
      const first = sibling * pow2(l);
      const end = first + pow2(l);
      path.push(end <= size ? this.node(l, sibling) : this.rangeHash(first, size));
    }
    for (let l = Math.max(inner, level), i = Math.floor(leafIndex / pow2(l)); i > 0; l++, i = half(i)) {
      if (isOdd(i)) path.push(this.node(l, i - 1));
    }
    return path;
  }

  /**
   * MTH of leaves [start, end), where `start` is a multiple of a power of two ≥ end - start (true
   * of every range the RFC's recursion visits): fold its complete subtrees from the right.
   */
  private rangeHash(start: number, end: number): Uint8Array {
    const chunks: Uint8Array[] = [];
    let offset = start;
    for (let level = bitLength(end - start) - 1; level >= 0; level--) {
      const width = pow2(level);
      if (offset + width <= end) {
        chunks.push(this.node(level, offset / width));
        offset += width;
      }
    }
    let acc = chunks[chunks.length - 1] as Uint8Array;
    for (let i = chunks.length - 2; i >= 0; i--) acc = nodeHash(chunks[i] as Uint8Array, acc);
    return acc;
  }

  protected checkSize(size: number): void {
    if (!isSize(size) || size > this.size) {
      throw new OpError('InvalidArgument', `tree size ${size} is not between 0 and ${this.size}`);
    }
  }

  protected checkIndex(index: number, size: number): void {
    if (!isSize(index) || index >= size) {
      throw new OpError('InvalidArgument', `leaf index ${index} is not below tree size ${size}`);
    }
  }
}

/**
 * An append-only RFC 6962 Merkle tree in memory. Level 0 holds the leaf hashes; level l holds the
 * hash of every complete subtree of 2^l leaves.
 */
export class MerkleTree extends MerkleNodes {
  private readonly store: Level[] = [];
  private leafCount = 0;

  /** Builds a tree from leaf hashes: 32-byte buffers, or one buffer of them concatenated. */
  static fromLeafHashes(hashes: Iterable<Uint8Array> | Uint8Array): MerkleTree {
    const tree = new MerkleTree();
    if (hashes instanceof Uint8Array) {
      if (hashes.length % HASH_SIZE !== 0) {
        throw new OpError(
          'InvalidArgument',
          `concatenated leaf hashes are ${hashes.length} bytes, not a multiple of ${HASH_SIZE}`,
        );
      }
      for (let off = 0; off < hashes.length; off += HASH_SIZE) {
        tree.append(hashes.subarray(off, off + HASH_SIZE));
      }
    } else {
      for (const h of hashes) tree.append(h);
    }
    return tree;
  }

  /** Number of leaves appended so far. */
  get size(): number {
    return this.leafCount;
  }

  /** The packed hashes of each level (views, not copies; level 0 is the leaf hashes). */
  get levels(): readonly Buffer[] {
    return this.store.map((l) => l.buf.subarray(0, l.count * HASH_SIZE));
  }

  /** Appends a leaf hash and returns its index. */
  append(leafHash: Uint8Array): number {
    if (leafHash.length !== HASH_SIZE) {
      throw new OpError('InvalidArgument', `leaf hash is ${leafHash.length} bytes, expected ${HASH_SIZE}`);
    }
    const index = this.leafCount;
    let node: Uint8Array = leafHash;
    let i = index;
    // Each right child completes its parent, so one append adds ~1 interior hash on average.
    for (let level = 0; ; level++) {
      this.push(level, node);
      if (!isOdd(i)) break;
      node = nodeHash(this.node(level, i - 1), node);
      i = half(i);
    }
    this.leafCount = index + 1;
    return index;
  }

  /** A copy of the hash of leaf `index`. */
  leafHash(index: number): Buffer {
    this.checkIndex(index, this.leafCount);
    return Buffer.from(this.node(0, index));
  }

  /** View of stored complete-subtree hash `index` at `level`. */
  protected node(level: number, index: number): Buffer {
    const l = this.store[level];
    if (l === undefined || index >= l.count) {
      throw new OpError('Internal', `Merkle node ${index} at level ${level} is not stored`);
    }
    return l.buf.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE);
  }

  private push(level: number, hash: Uint8Array): void {
    let l = this.store[level];
    if (l === undefined) {
      l = { buf: Buffer.allocUnsafeSlow(INITIAL_CAPACITY * HASH_SIZE), count: 0 };
      this.store.push(l);
    }
    if ((l.count + 1) * HASH_SIZE > l.buf.length) {
      const grown = Buffer.allocUnsafeSlow(l.buf.length * 2);
      l.buf.copy(grown, 0, 0, l.count * HASH_SIZE);
      l.buf = grown;
    }
    l.buf.set(hash, l.count * HASH_SIZE);
    l.count++;
  }
}
