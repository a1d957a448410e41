import { HASH_SIZE, MerkleTree } from './merkle.js';
import { excerpt, strictBase64, type Parsed } from './note.js';
import { leafHash } from './rfc6962.js';

/**
 * The text forms of proofs that `audit prove` and `audit consistency` print and `audit verify-proof`
 * reads, modelled on c2sp.org/tlog-proof: a header line, `key value` lines, then one base64 hash a
 * line, ending in a newline. Parsers are strict: anything before the header, after the last hash,
 * or in between that is not part of the form is named by its line number.
 */
export const INCLUSION_HEADER = 'op-dbus.audit/inclusion-proof@v1';
export const CONSISTENCY_HEADER = 'op-dbus.audit/consistency-proof@v1';

/** An inclusion proof: the entry's exact leaf bytes, its index, the tree size, the path. */
export interface InclusionProofText {
  kind: 'inclusion';
  index: number;
  size: number;
  entry: Buffer;
  proof: Buffer[];
}

/** A consistency proof between two tree sizes. */
export interface ConsistencyProofText {
  kind: 'consistency';
  oldSize: number;
  newSize: number;
  proof: Buffer[];
}

export function formatInclusionProof(p: Omit<InclusionProofText, 'kind'>): string {
  return [
    INCLUSION_HEADER,
    `index ${p.index}`,
    `size ${p.size}`,
    `entry ${p.entry.toString('base64')}`,
    ...p.proof.map((h) => h.toString('base64')),
    '',
  ].join('\n');
}

export function formatConsistencyProof(p: Omit<ConsistencyProofText, 'kind'>): string {
  return [
    CONSISTENCY_HEADER,
    `old ${p.oldSize}`,
    `new ${p.newSize}`,
    ...p.proof.map((h) => h.toString('base64')),
    '',
  ].join('\n');
}

/** Parses either proof form; the reason names the line that is wrong. */
export function parseProofText(text: string): Parsed<{ proof: InclusionProofText | ConsistencyProofText }> {
  if (!text.endsWith('\n'))
    return { ok: false, reason: 'proof does not end with a newline (truncated, or text after it)' };
  const lines = text.slice(0, -1).split('\n');
  const header = lines[0] ?? '';
  const keyed =
    header === INCLUSION_HEADER
      ? ['index', 'size', 'entry']
      : header === CONSISTENCY_HEADER
        ? ['old', 'new']
        : null;
  if (keyed === null) {
    return {
      ok: false,
      reason: `line 1: expected ${INCLUSION_HEADER} or ${CONSISTENCY_HEADER}, found ${excerpt(header)} (text before the proof?)`,
    };
  }
  const values: string[] = [];
  for (let i = 0; i < keyed.length; i++) {
    const line = lines[i + 1];
    const key = keyed[i] as string;
    if (line === undefined || !line.startsWith(`${key} `)) {
      return {
        ok: false,
        reason: `line ${i + 2}: expected \`${key} <value>\`, found ${excerpt(line ?? '(end of text)')}`,
      };
    }
    values.push(line.slice(key.length + 1));
  }
  const numbers: Record<string, number> = {};
  for (let i = 0; i < keyed.length; i++) {
    const key = keyed[i] as string;
    if (key === 'entry') continue;
    const v = values[i] as string;
    if (!/^(0|[1-9][0-9]*)$/.test(v) || !Number.isSafeInteger(Number(v))) {
      return { ok: false, reason: `line ${i + 2}: ${key} is not a decimal number: ${excerpt(v)}` };
    }
    numbers[key] = Number(v);
  }
  const proof: Buffer[] = [];
  for (let i = keyed.length + 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const hash = strictBase64(line);
    if (hash === undefined || hash.length !== HASH_SIZE) {
      return {
        ok: false,
        reason: `line ${i + 1}: not the base64 of a 32-byte hash: ${excerpt(line)}${i === lines.length - 1 ? ' (text after the proof?)' : ''}`,
      };
    }
    proof.push(hash);
  }
  if (header === INCLUSION_HEADER) {
    const entry = strictBase64(values[2] as string);
    if (entry === undefined) return { ok: false, reason: 'line 4: entry is not base64' };
    return {
      ok: true,
      proof: {
        kind: 'inclusion',
        index: numbers['index'] as number,
        size: numbers['size'] as number,
        entry,
        proof,
      },
    };
  }
  return {
    ok: true,
    proof: {
      kind: 'consistency',
      oldSize: numbers['old'] as number,
      newSize: numbers['new'] as number,
      proof,
    },
  };
}

/** One line of `audit export`: the entry's seq and the base64 of the exact bytes hashed as its leaf. */
export interface ExportLine {
  seq: number;
  leaf: string;
}

/**
 * Rebuilds the tree from `audit export` JSON lines (the first `size` of them) and returns its root;
 * the reason names the first bad line.
 */
export function rootFromExport(text: string, size: number): Parsed<{ root: Buffer; lines: number }> {
  const tree = new MerkleTree();
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length && tree.size < size; i++) {
    const where = `line ${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(lines[i] as string);
    } catch {
      return { ok: false, reason: `${where}: not JSON: ${excerpt(lines[i] as string)}` };
    }
    if (typeof value !== 'object' || value === null) return { ok: false, reason: `${where}: not an object` };
    const { seq, leaf } = value as Partial<ExportLine>;
    if (seq !== tree.size) {
      return {
        ok: false,
        reason: `${where}: seq is ${JSON.stringify(seq)}, expected ${tree.size} (entry missing or out of order)`,
      };
    }
    const bytes = typeof leaf === 'string' ? strictBase64(leaf) : undefined;
    if (bytes === undefined) return { ok: false, reason: `${where}: leaf is not base64` };
    tree.append(leafHash(bytes));
  }
  if (tree.size < size) {
    return {
      ok: false,
      reason: `the export has ${tree.size} entries, the checkpoint ${size} (truncated export?)`,
    };
  }
  return { ok: true, root: tree.root(size), lines: lines.length };
}
