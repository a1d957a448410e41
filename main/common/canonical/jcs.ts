import { createHash } from 'node:crypto';

/**
 * RFC 8785 (JCS) canonical JSON text of a value: key order and number spelling never change a hash.
 * The same text as the `canonicalize` package (checked against it in jcs.test.ts), written for the
 * engine's large values (a 10,000-flow plan is hashed on every plan): strings and numbers spelled by
 * JSON.stringify (ECMAScript's number form is JCS's), keys sorted by UTF-16 code units, lone
 * surrogates, NaN, Infinity and cycles refused, toJSON honoured, undefined members left out.
 */
export function canonicalJson(value: unknown): string {
  const text = canonical(value, new Set());
  if (text === undefined) throw new TypeError('value has no JSON form (undefined or a function)');
  return text;
}

const SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function str(s: string): string {
  // the common case (no surrogate at all) costs one native scan
  if (SURROGATE.test(s) && LONE_SURROGATE.test(s)) throw new Error('Lone surrogate is not allowed');
  return JSON.stringify(s);
}

function canonical(value: unknown, seen: Set<object>): string | undefined {
  switch (typeof value) {
    case 'string':
      return str(value);
    case 'number':
      if (Number.isNaN(value)) throw new Error('NaN is not allowed');
      if (!Number.isFinite(value)) throw new Error('Infinity is not allowed');
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      // booleans as JSON spells them; undefined, functions and symbols have no JSON form
      return JSON.stringify(value) as string | undefined;
  }
  if (value === null) return 'null';
  if (seen.has(value)) throw new Error('Circular reference detected');
  seen.add(value);
  // parts joined once (a string grown by += is a rope that costs more to flatten for the hash)
  let out: string | undefined;
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    out = canonical((toJSON as () => unknown).call(value), seen);
  } else if (Array.isArray(value)) {
    const parts = new Array<string>(value.length);
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      // as the package: a member with no JSON form (a function) leaves its place empty
      parts[i] = v === undefined || typeof v === 'symbol' ? 'null' : (canonical(v, seen) ?? '');
    }
    out = `[${parts.join(',')}]`;
  } else {
    const o = value as Record<string, unknown>;
    const parts: string[] = [];
    for (const k of Object.keys(o).sort()) {
      const v = o[k];
      if (v === undefined || typeof v === 'symbol') continue;
      parts.push(`${str(k)}:${canonical(v, seen) ?? 'undefined'}`);
    }
    out = `{${parts.join(',')}}`;
  }
  seen.delete(value);
  return out;
}

/** SHA-256 (hex) of the canonical JSON of a value: the content address of plans, payloads and snapshots. */
export function contentHash(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}

/** SHA-256 (hex) of a text already canonical (a caller composing canonical texts it has written once). */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
