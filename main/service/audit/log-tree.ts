import type Database from 'better-sqlite3';
import { OpError } from '../../common/contract/errors.js';
import { HASH_SIZE, MerkleNodes } from '../../common/transparency/merkle.js';
import { nodeHash } from '../../common/transparency/rfc6962.js';

/** Levels from which complete nodes are kept in memory once read: every proof passes the few upper ones. */
const CACHE_MIN_LEVEL = 8;
/** At most this many cached nodes (32 bytes each); past it the cache starts again. */
const CACHE_MAX = 1 << 16;

/**
 * The Merkle tree of the audit log, kept in the entries table itself: the row of leaf i holds, in
 * its `nodes` column, the interior nodes that leaf i completes (levels 1..t, t = trailing one-bits
 * of i; on average one). Node (level l, index k) is therefore in row (k + 1) * 2^l - 1 at offset
 * (l - 1) * 32: any node is one primary-key lookup, so opening a log of any size costs O(log n)
 * lookups and nothing is rebuilt. The right border (one node per set bit of the size) is cached for
 * appends and checked against the table's last row before each use. Proofs read their nodes by
 * lookup, except the border's and those of the upper levels, which stay in memory once read (a
 * complete node never changes; the cache is dropped whenever the table changed behind our back).
 */
export class LogTree extends MerkleNodes {
  private leafCount = 0;
  /** frontier[l]: the complete subtree at level l on the right border, when bit l of the size is set. */
  private frontier: (Buffer | undefined)[] = [];
  private lastLeaf: Buffer | undefined;
  private readonly upper = new Map<number, Uint8Array>();
  private readonly leafAt: Database.Statement<[number], unknown>;
  private readonly nodeAt: Database.Statement<[number, number], unknown>;

  constructor(db: Database.Database) {
    super();
    // One column, one value per lookup: a proof is ~20 of them, and each Buffer better-sqlite3 makes costs.
    this.leafAt = db.prepare<[number], unknown>('SELECT leaf FROM entries WHERE seq = ?').pluck();
    this.nodeAt = db
      .prepare<[number, number], unknown>(
        "SELECT CASE WHEN typeof(nodes) = 'blob' THEN substr(nodes, ?, 32) END FROM entries WHERE seq = ?",
      )
      .pluck();
  }

  get size(): number {
    return this.leafCount;
  }

  /** Reloads the right border for a log of `size` entries whose last leaf is `lastLeaf`. */
  load(size: number, lastLeaf: Buffer | undefined): void {
    this.leafCount = size;
    this.lastLeaf = lastLeaf;
    this.frontier = [];
    this.upper.clear();
    for (let l = 0, rest = size; rest > 0; l++, rest = Math.floor(rest / 2)) {
      if (rest % 2 === 1) this.frontier[l] = Buffer.from(this.node(l, Math.floor(size / 2 ** l) - 1));
    }
  }

  /** Whether the cached border still describes a log of `size` entries ending in `lastLeaf`. */
  matches(size: number, lastLeaf: Buffer | undefined): boolean {
    if (size !== this.leafCount) return false;
    if (lastLeaf === undefined || this.lastLeaf === undefined) return lastLeaf === this.lastLeaf;
    return lastLeaf.equals(this.lastLeaf);
  }

  /**
   * The interior nodes that appending `leaf` completes, as the `nodes` column stores them (null when
   * none), and the border afterwards. Pure: the caller commits with `advance` once the row is written.
   */
  static extend(
    frontier: readonly (Buffer | undefined)[],
    size: number,
    leaf: Buffer,
  ): { nodes: Buffer | null; frontier: (Buffer | undefined)[] } {
    const next = frontier.slice();
    let node = leaf;
    let level = 0;
    const completed: Buffer[] = [];
    for (let i = size; i % 2 === 1; i = Math.floor(i / 2), level++) {
      const left = next[level];
      if (left === undefined) throw new OpError('Internal', `Merkle border has no node at level ${level}`);
      node = nodeHash(left, node);
      next[level] = undefined;
      completed.push(node);
    }
    next[level] = node;
    return { nodes: completed.length === 0 ? null : Buffer.concat(completed), frontier: next };
  }

  /** The current border, for `extend`. */
  get border(): readonly (Buffer | undefined)[] {
    return this.frontier;
  }

  /** Takes the border after appended rows were written (same transaction as the rows). */
  advance(size: number, frontier: (Buffer | undefined)[], lastLeaf: Buffer): void {
    this.leafCount = size;
    this.frontier = frontier;
    this.lastLeaf = lastLeaf;
  }

  /** Root of the current tree from the cached border (no lookups). */
  currentRoot(): Buffer {
    if (this.leafCount === 0) return this.root(0);
    let acc: Buffer | undefined;
    for (const node of this.frontier) {
      if (node === undefined) continue;
      acc = acc === undefined ? node : nodeHash(node, acc);
    }
    return Buffer.from(acc as Buffer);
  }

  protected node(level: number, index: number): Uint8Array {
    const border = this.frontier[level];
    if (border !== undefined && index === Math.floor(this.leafCount / 2 ** level) - 1) return border;
    // level >= 8 keeps index below size / 256, so the key stays a safe integer.
    const key = level >= CACHE_MIN_LEVEL ? index * 64 + level : -1;
    const cached = key >= 0 ? this.upper.get(key) : undefined;
    if (cached !== undefined) return cached;
    const seq = (index + 1) * 2 ** level - 1;
    const value = level === 0 ? this.leafAt.get(seq) : this.nodeAt.get((level - 1) * HASH_SIZE + 1, seq);
    if (value === undefined) {
      throw new OpError(
        'AuditCorrupt',
        `entry ${seq} is missing: Merkle node (level ${level}) not found; run verify`,
      );
    }
    if (!Buffer.isBuffer(value) || value.length !== HASH_SIZE) {
      throw new OpError(
        'AuditCorrupt',
        level === 0
          ? `entry ${seq}: stored leaf is not a 32-byte hash; run verify`
          : `entry ${seq}: stored Merkle nodes are missing or short; run verify`,
      );
    }
    if (key >= 0) {
      if (this.upper.size >= CACHE_MAX) this.upper.clear();
      this.upper.set(key, value);
    }
    return value;
  }
}
