import { REDACTED_VALUE, type QueryResponse } from '../../../main/common/contract/index.js';

/** A desired-state document made from the host's state, and what was left out of it. */
export interface HostDocument {
  text: string;
  /** JSON pointers of the values the core redacted, which the document leaves out. */
  leftOut: string[];
}

/**
 * The host's state as a desired-state document, for "Start from host state". The core redacts
 * secret values; copying its placeholder would make Apply set the placeholder itself. So a redacted
 * value is left out (its key, or the whole array that holds it): what the document does not name is
 * not managed, and the secret on the host stays as it is.
 */
export function hostDocument(q: QueryResponse, at: Date): HostDocument {
  const leftOut: string[] = [];
  const plugins: Record<string, unknown> = {};
  for (const p of q.plugins) {
    if (!p.available) continue;
    plugins[p.plugin] = withoutRedacted(p.state ?? {}, `/plugins/${pointerToken(p.plugin)}`, leftOut);
  }
  const head = [`// The host's state as the core reported it at ${at.toLocaleString()}.`];
  if (leftOut.length > 0) head.push(`// ${leftOutNote(leftOut)}`);
  return { text: `${head.join('\n')}\n${JSON.stringify({ version: 1, plugins }, null, 2)}\n`, leftOut };
}

/** What the editor says about the values left out, in one sentence. */
export function leftOutNote(leftOut: readonly string[]): string {
  const n = leftOut.length;
  return `Left out ${n === 1 ? 'a secret value' : `${n} secret values`} the core does not reveal (${leftOut.join(', ')}): as long as the document does not name ${n === 1 ? 'it' : 'them'}, Apply leaves ${n === 1 ? 'it' : 'them'} as on the host; add ${n === 1 ? 'it' : 'them'} to manage ${n === 1 ? 'it' : 'them'}.`;
}

/** The value without the redacted parts, each one's pointer added to leftOut; undefined when it is all redacted. */
function withoutRedacted(value: unknown, pointer: string, leftOut: string[]): unknown {
  if (value === REDACTED_VALUE) {
    leftOut.push(pointer);
    return undefined;
  }
  if (Array.isArray(value)) {
    // an array with a hole would name other items than the host's: leave out all of it
    const found: string[] = [];
    value.forEach((v, i) => withoutRedacted(v, `${pointer}/${i}`, found));
    if (found.length === 0) return value;
    leftOut.push(pointer);
    return undefined;
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const kept = withoutRedacted(v, `${pointer}/${pointerToken(k)}`, leftOut);
      if (kept !== undefined) out[k] = kept;
    }
    return out;
  }
  return value;
}

/** One reference token of a JSON pointer (RFC 6901). */
function pointerToken(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}
