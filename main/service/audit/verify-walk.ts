import type Database from 'better-sqlite3';
import { auditWalkFunction } from '../../../native/index.js';
import { OpError } from '../../common/contract/errors.js';
import { AuditKind } from '../../common/contract/payloads.js';
import { fieldsOf, indexMismatch, parseBody, scanCanonicalBody, type BodyFields } from './entry.js';
import { leafHashHexOfText, nodeHashHex } from '../../common/transparency/rfc6962.js';

/** The `prev` of entry 0, and the head of an empty log. */
export const ZERO_HASH = '0'.repeat(64);

/** A checkpoint the log issued, as the walk compares it: the root as hex. */
export interface IssuedRoot {
  size: number;
  rootHex: string;
  time: string;
}

/** What a verify walk checks besides the rows themselves; plain data, so it crosses to a worker as is. */
export interface VerifyTask {
  /** A head saved earlier ({size, head}), checked at entry size - 1. */
  checkpoint: { size: number; head: string } | undefined;
  /** Every checkpoint the log signed, by size ascending. */
  issued: IssuedRoot[];
  /** The largest seq in the table (the snapshot the caller holds), -1 when it is empty. */
  lastSeq: number;
  /** Entries per chunk; chunk c is seq [c * chunkSize, (c + 1) * chunkSize), the first and last open-ended. */
  chunkSize: number;
  /** Number of chunks (1 when one walk covers the whole table). */
  chunks: number;
  /** false: walk every row in TypeScript even where the native fast path is built (tests compare both). */
  native?: boolean;
}

/**
 * Where the walk stands between two entries: the seq it expects next, the leaf (hex) the next prev must
 * name, and the right border of the tree so far (hex, by level; undefined where the size's bit is 0).
 */
export interface WalkState {
  expected: number;
  prevLeafHex: string;
  frontier: (string | undefined)[];
}

/** The first entry that fails a check. */
export interface BadEntry {
  seq: number;
  reason: string;
}

/** One chunk walked from the state read back from the table at its start (null: it could not be read). */
export interface ChunkResult {
  chunk: number;
  start: WalkState | null;
  end: WalkState;
  firstBad?: BadEntry;
}

const PAGE = 512;
// The precise forms, read only for a row the fast check refuses and for a chunk's start: `leaf` is NULL
// unless it is a 32-byte BLOB; `nodes` is NULL for NULL, hex for a BLOB and '!' (which no computed value
// equals) for anything else.
const LEAF_HEX = `CASE WHEN typeof(leaf) = 'blob' AND length(leaf) = 32 THEN lower(hex(leaf)) END`;
const NODES_HEX = `CASE typeof(nodes) WHEN 'null' THEN NULL WHEN 'blob' THEN lower(hex(nodes)) ELSE '!' END`;
// The walk's row is four values: every JS value better-sqlite3 makes costs ~0.3 µs, and a BLOB more (a
// Buffer), which at 1M rows was the larger part of a verify. The leaf and nodes come as one hex text (the
// walk compares hex anyway), '!' unless the leaf is a 32-byte BLOB and nodes NULL or a non-empty BLOB.
const LEAF_NODES_HEX =
  `CASE WHEN typeof(leaf) = 'blob' AND length(leaf) = 32 AND ` +
  `(typeof(nodes) = 'null' OR (typeof(nodes) = 'blob' AND length(nodes) > 0)) ` +
  `THEN lower(hex(leaf) || coalesce(hex(nodes), '')) ELSE '!' END`;
/** A column as typed text: 't' + text, 'i' + integer, 'n' for NULL, '!' for any other type. */
const typed = (column: string): string =>
  `CASE typeof(${column}) WHEN 'text' THEN 't' || ${column} WHEN 'integer' THEN 'i' || ${column} ` +
  `WHEN 'null' THEN 'n' ELSE '!' END`;
/** The index columns as one text, typed and joined by U+001F; indexKey spells the body's fields alike. */
const INDEX_TEXT = ['time', 'kind', 'plugin', 'actor_uid', 'summary'].map(typed).join(' || char(31) || ');
const COLUMNS = `seq, body, ${LEAF_NODES_HEX}, ${INDEX_TEXT}`;
const INDEX_COLUMNS = 'time, kind, plugin, actor_uid, summary';

type Row = [unknown, unknown, string | null, string | null];

/** The statements a walk needs, prepared once per connection. */
export interface WalkStatements {
  page: Database.Statement<[number, number], Row>;
  nodeRow: Database.Statement<[number], [string | null, string | null]>;
  indexRow: Database.Statement<[number], [unknown, unknown, unknown, unknown, unknown]>;
}

export function prepareWalk(db: Database.Database): WalkStatements {
  return {
    page: db
      .prepare<[number, number], Row>(
        `SELECT ${COLUMNS} FROM entries WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ${PAGE}`,
      )
      .raw(true),
    nodeRow: db
      .prepare<[number], [string | null, string | null]>(
        `SELECT ${LEAF_HEX}, ${NODES_HEX} FROM entries WHERE seq = ?`,
      )
      .raw(true),
    indexRow: db
      .prepare<[number], [unknown, unknown, unknown, unknown, unknown]>(
        `SELECT ${INDEX_COLUMNS} FROM entries WHERE seq = ?`,
      )
      .raw(true),
  };
}

const US = '\u001f';

/**
 * The body's index fields as INDEX_TEXT spells the columns, or undefined when a field holds U+001F (then
 * the joined text is ambiguous and the columns are compared one by one). Without U+001F in any field the
 * text has exactly four separators, so it equals INDEX_TEXT only when every column equals its field and
 * has its type.
 */
function indexKey(e: BodyFields, plain: boolean): string | undefined {
  const key = `t${e.time}${US}t${e.kind}${US}${e.plugin === null ? 'n' : `t${e.plugin}`}${US}${
    e.uid === null ? 'n' : `i${e.uid}`
  }${US}t${e.summary}`;
  // A body without a backslash has no escape, so no field can hold a control character.
  if (plain) return key;
  let separators = 0;
  for (let i = key.indexOf(US); i >= 0; i = key.indexOf(US, i + 1)) separators += 1;
  return separators === 4 ? key : undefined;
}

/** The initial state: nothing walked yet. */
export function initialState(): WalkState {
  return { expected: 0, prevLeafHex: ZERO_HASH, frontier: [] };
}

/** Seq bounds of chunk c: rows with lo < seq <= hi. */
function chunkBounds(task: VerifyTask, c: number): { lo: number; hi: number } {
  const lo = c === 0 ? -Infinity : c * task.chunkSize - 1;
  const hi = c === task.chunks - 1 ? Math.max(task.lastSeq, lo) : (c + 1) * task.chunkSize - 1;
  return { lo, hi };
}

/**
 * The walk's state at the start of chunk c as the table says it is: the leaf of the entry before and the
 * stored border nodes (one primary-key lookup per set bit of the size). Null when a row or node it needs
 * is missing or malformed; the caller then walks the chunk from the previous chunk's end instead.
 */
export function loadStartState(stmts: WalkStatements, task: VerifyTask, c: number): WalkState | null {
  if (c === 0) return initialState();
  const size = c * task.chunkSize;
  const before = stmts.nodeRow.get(size - 1);
  if (before === undefined || before[0] === null) return null;
  const frontier: (string | undefined)[] = [];
  for (let l = 0, rest = size; rest > 0; l++, rest = Math.floor(rest / 2)) {
    if (rest % 2 === 0) continue;
    const seq = Math.floor(size / 2 ** l) * 2 ** l - 1;
    const row = stmts.nodeRow.get(seq);
    if (row === undefined) return null;
    if (l === 0) {
      if (row[0] === null) return null;
      frontier[l] = row[0];
    } else {
      const nodes = row[1];
      if (nodes === null || nodes.length < l * 64) return null;
      frontier[l] = nodes.slice((l - 1) * 64, l * 64);
    }
  }
  return { expected: size, prevLeafHex: before[0], frontier };
}

/** Whether two states are the same (the border compared level by level). */
export function sameState(a: WalkState, b: WalkState): boolean {
  if (a.expected !== b.expected || a.prevLeafHex !== b.prevLeafHex) return false;
  const n = Math.max(a.frontier.length, b.frontier.length);
  for (let l = 0; l < n; l++) {
    if ((a.frontier[l] ?? undefined) !== (b.frontier[l] ?? undefined)) return false;
  }
  return true;
}

/**
 * Walks the rows of chunk c in seq order from `start` and names the first bad one: body (canonical
 * AuditEntry), seq, chain, leaf, index columns, the Merkle nodes stored with each row, the saved head and
 * the roots of the checkpoints the log issued. Given the state the sequential walk has at the chunk's
 * start, it returns exactly what that walk finds in these rows and the state after them. `start` is
 * taken over (its border is updated in place).
 */
export function walkChunk(
  stmts: WalkStatements,
  task: VerifyTask,
  c: number,
  start: WalkState,
): { end: WalkState; firstBad?: BadEntry } {
  const { lo, hi } = chunkBounds(task, c);
  const state = start;
  const { checkpoint, issued } = task;
  const checkAt = checkpoint !== undefined && checkpoint.size > 0 ? checkpoint.size - 1 : -1;
  let nextIssued = 0;
  while (nextIssued < issued.length && (issued[nextIssued] as IssuedRoot).size <= state.expected) {
    nextIssued += 1;
  }
  const done = (firstBad?: BadEntry) => (firstBad === undefined ? { end: state } : { end: state, firstBad });
  const fast = task.native === false ? undefined : nativeWalker();
  for (let cursor = lo; ;) {
    const rows = stmts.page.all(cursor, hi);
    for (let i = 0; i < rows.length; i++) {
      if (fast !== undefined) {
        // The native walk takes the rows it is sure of, up to the next row a saved head or an issued
        // checkpoint is checked at; the row it stops at is walked here.
        let limit = checkAt >= state.expected ? checkAt : Number.MAX_SAFE_INTEGER;
        const cp = issued[nextIssued];
        if (cp !== undefined) limit = Math.min(limit, cp.size - 1);
        i += fast(rows, i, limit, state);
        if (i >= rows.length) break;
      }
      const row = rows[i] as Row;
      const [seq, body, leafNodesHex, indexText] = row;
      const expected = state.expected;
      if (typeof seq !== 'number') {
        return done({ seq: expected, reason: `entry ${expected}: seq is not an integer` });
      }
      if (seq > expected) {
        return done({ seq: expected, reason: `entry ${expected} missing (the next stored entry is ${seq})` });
      }
      if (seq < expected) {
        return done({ seq, reason: `entry ${seq}: seq out of order (expected ${expected})` });
      }
      const bad = (reason: string) => done({ seq, reason: `entry ${seq}: ${reason}` });
      if (typeof body !== 'string') return bad('body is not text');
      // The fast reader takes only a canonical body whose prev is the one expected; parseBody has the rest.
      let entry: BodyFields | undefined = scanCanonicalBody(body, state.prevLeafHex);
      if (entry === undefined) {
        const parsed = parseBody(body);
        if (typeof parsed === 'string') return bad(parsed);
        entry = fieldsOf(parsed);
      }
      if (entry.seq !== seq) {
        return bad(`body says seq ${entry.seq} (seq out of order: entries reordered or moved)`);
      }
      // '!' (a leaf or nodes of the wrong type or size): the precise forms say which.
      const stored = leafNodesHex === null || leafNodesHex === '!' ? stmts.nodeRow.get(seq) : undefined;
      const leafHex = stored !== undefined ? stored[0] : (leafNodesHex as string).slice(0, 64);
      if (leafHex === null) return bad('stored leaf is not a 32-byte hash');
      if (leafHashHexOfText(body) !== leafHex) return bad('stored leaf does not match its content');
      if (entry.prev !== state.prevLeafHex) {
        return bad(
          seq === 0
            ? 'prev of the first entry is not 64 zeros (chain broken)'
            : `prev does not match entry ${seq - 1}'s leaf (chain broken)`,
        );
      }
      if (indexText === null || indexText !== indexKey(entry, !body.includes('\\'))) {
        const columns = stmts.indexRow.get(seq);
        const e = entry;
        const problem =
          columns === undefined
            ? 'the row vanished while it was read'
            : indexMismatch({ ...e, actor: { uid: e.uid } }, ...columns);
        if (problem !== null) return bad(problem);
      }
      const nodesHex = extendHex(state.frontier, seq, leafHex);
      const nodesMatch =
        stored !== undefined
          ? nodesHex === stored[1]
          : nodesHex === null
            ? (leafNodesHex as string).length === 64
            : (leafNodesHex as string).length === 64 + nodesHex.length &&
              (leafNodesHex as string).endsWith(nodesHex);
      if (!nodesMatch) {
        return bad('stored Merkle tree nodes do not match the leaves (a leaf or a node was rewritten)');
      }
      if (seq === checkAt && checkpoint !== undefined && leafHex !== checkpoint.head) {
        return bad(
          'differs from the checkpoint saved earlier: history at or before this entry was rewritten',
        );
      }
      while (nextIssued < issued.length && (issued[nextIssued] as IssuedRoot).size <= seq + 1) {
        const cp = issued[nextIssued] as IssuedRoot;
        if (cp.size === seq + 1 && rootHexOf(state.frontier) !== cp.rootHex) {
          return bad(
            `the tree of ${cp.size} entries does not have the root of the checkpoint signed at ${cp.time}: history was rewritten`,
          );
        }
        nextIssued += 1;
      }
      state.prevLeafHex = leafHex;
      state.expected = expected + 1;
    }
    if (rows.length < PAGE) return done();
    cursor = (rows[rows.length - 1] as Row)[0] as number;
  }
}

type FastWalk = (rows: Row[], from: number, limitSeq: number, state: WalkState) => number;

const KIND_LIST = AuditKind.options.join('\n');
const LOWER_HEX64 = /^[0-9a-f]{64}$/;

/**
 * The native fast path over a page (native/src/audit_walk.cc) with the walk state moved in and out of
 * its binary form; undefined without the addon. It accepts only rows this walk accepts and stops at
 * the first it is unsure of, so the answer is the same with and without it (tests compare both).
 */
function nativeWalker(): FastWalk | undefined {
  const walk = auditWalkFunction();
  if (walk === undefined) return undefined;
  const prev = Buffer.alloc(32);
  const border = Buffer.alloc(32 * 64);
  return (rows, from, limitSeq, state) => {
    if (!LOWER_HEX64.test(state.prevLeafHex)) return 0;
    for (let l = 0; l < 64; l++) {
      const node = state.frontier[l];
      const set = Math.floor(state.expected / 2 ** l) % 2 === 1;
      if (set !== (node !== undefined) || (node !== undefined && !LOWER_HEX64.test(node))) return 0;
      if (node !== undefined) border.write(node, l * 32, 'hex');
    }
    prev.write(state.prevLeafHex, 0, 'hex');
    const taken = walk(rows, from, limitSeq, state.expected, prev, border, KIND_LIST);
    if (taken === 0) return 0;
    state.expected += taken;
    state.prevLeafHex = prev.toString('hex');
    const frontier: (string | undefined)[] = [];
    for (let l = 0; l < 64; l++) {
      if (Math.floor(state.expected / 2 ** l) % 2 === 1)
        frontier[l] = border.toString('hex', l * 32, l * 32 + 32);
    }
    state.frontier = frontier;
    return taken;
  };
}

/**
 * Appends leaf `leafHex` at index `size` to the border (in place) and returns the interior nodes it
 * completes, concatenated hex as the `nodes` column holds them, or null when it completes none.
 */
export function extendHex(frontier: (string | undefined)[], size: number, leafHex: string): string | null {
  let node = leafHex;
  let level = 0;
  let nodes: string | null = null;
  for (let i = size; i % 2 === 1; i = (i - 1) / 2, level++) {
    const left = frontier[level];
    if (left === undefined) throw new OpError('Internal', `Merkle border has no node at level ${level}`);
    node = nodeHashHex(left, node);
    frontier[level] = undefined;
    nodes = nodes === null ? node : nodes + node;
  }
  frontier[level] = node;
  return nodes;
}

/** Root (hex) of a tree from its right border, levels ascending; '' for the empty border. */
export function rootHexOf(frontier: readonly (string | undefined)[]): string {
  let acc: string | undefined;
  for (const node of frontier) {
    if (node === undefined) continue;
    acc = acc === undefined ? node : nodeHashHex(node, acc);
  }
  return acc ?? '';
}

/** The checks made once every row has been walked: entries a saved head or an issued checkpoint counts are missing. */
export function missingAtEnd(task: VerifyTask, expected: number): BadEntry | undefined {
  const { checkpoint, issued } = task;
  if (checkpoint !== undefined && expected < checkpoint.size) {
    return {
      seq: expected,
      reason: `entry ${expected} missing: checkpoint has ${checkpoint.size} entries, log has ${expected}`,
    };
  }
  const lastIssued = issued[issued.length - 1];
  if (lastIssued !== undefined && expected < lastIssued.size) {
    return {
      seq: expected,
      reason: `entry ${expected} missing: the log signed a checkpoint of ${lastIssued.size} entries at ${lastIssued.time}, it now has ${expected}`,
    };
  }
  return undefined;
}

/**
 * Stitches chunk results in seq order into the sequential walk's answer. A chunk's result stands when
 * the state it started from (read back from the table) is the state the chunks before it ended in;
 * otherwise (only possible after a gap or a bad entry before it) the chunk is walked again here from that
 * state. The first bad entry in seq order is returned, however many chunks found one.
 */
export function stitch(
  task: VerifyTask,
  results: readonly (ChunkResult | undefined)[],
  walkFrom: (c: number, start: WalkState) => { end: WalkState; firstBad?: BadEntry },
): BadEntry | undefined {
  let state = initialState();
  for (let c = 0; c < task.chunks; c++) {
    const r = results[c];
    const outcome =
      r !== undefined && r.start !== null && sameState(r.start, state) ? r : walkFrom(c, cloneState(state));
    if (outcome.firstBad !== undefined) return outcome.firstBad;
    state = outcome.end;
  }
  return missingAtEnd(task, state.expected);
}

export function cloneState(s: WalkState): WalkState {
  return { expected: s.expected, prevLeafHex: s.prevLeafHex, frontier: s.frontier.slice() };
}

/** Walks chunk c from the state read back from the table (what each thread does with the chunks it claims). */
export function runChunk(stmts: WalkStatements, task: VerifyTask, c: number): ChunkResult {
  const start = loadStartState(stmts, task, c);
  if (start === null) return { chunk: c, start: null, end: initialState() };
  const startCopy = cloneState(start);
  const { end, firstBad } = walkChunk(stmts, task, c, start);
  return firstBad === undefined
    ? { chunk: c, start: startCopy, end }
    : { chunk: c, start: startCopy, end, firstBad };
}

// Shared claim board (Int32Array over a SharedArrayBuffer): the next chunk to hand out, the first chunk no
// longer needed (a bad entry was found before it), then one status word per chunk.
export const NEXT = 0;
export const STOP = 1;
export const STATUS = 2;
export const UNCLAIMED = 0;
export const CLAIMED = 1;
export const DONE = 2;

/** A new claim board for `chunks` chunks. */
export function claimBoard(chunks: number): Int32Array {
  const board = new Int32Array(new SharedArrayBuffer((STATUS + chunks) * 4));
  board[STOP] = chunks;
  return board;
}

/**
 * The chunk claimer of one thread: the next unclaimed chunk below the stop mark, or -1. Dynamic (whoever
 * is free takes the next one, so a thread slowed by other work on the machine takes fewer) or round-robin
 * (chunk c belongs to thread c mod threads and every chunk is walked: deterministic, for tests).
 */
export function claimer(
  board: Int32Array,
  chunks: number,
  thread: number,
  threads: number,
  roundRobin: boolean,
): () => number {
  let k = 0;
  return () => {
    for (;;) {
      const c = roundRobin ? thread + threads * k++ : Atomics.add(board, NEXT, 1);
      // Round-robin (tests) walks every chunk, so each thread reports what it finds in its own chunks.
      if (c >= chunks || (!roundRobin && c >= Atomics.load(board, STOP))) return -1;
      if (Atomics.compareExchange(board, STATUS + c, UNCLAIMED, CLAIMED) === UNCLAIMED) return c;
    }
  };
}

/** Marks chunk c done (its result already posted) and, when it found a bad entry, no chunk after it needed. */
export function finishChunk(board: Int32Array, c: number, foundBad: boolean): void {
  if (foundBad) {
    for (let cur = Atomics.load(board, STOP); c + 1 < cur; cur = Atomics.load(board, STOP)) {
      if (Atomics.compareExchange(board, STOP, cur, c + 1) === cur) break;
    }
  }
  Atomics.store(board, STATUS + c, DONE);
  Atomics.notify(board, STATUS + c);
}

/** What a worker posts per chunk: the result, or why it could not walk it (the chunk is then walked again). */
export type ChunkMessage = { chunk: number; thread: number; result?: ChunkResult; error?: string };
