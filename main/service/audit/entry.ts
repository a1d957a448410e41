import { createHash } from 'node:crypto';
import { canonicalJson } from '../../common/canonical/jcs.js';
import { OpError } from '../../common/contract/errors.js';
import { printable } from '../../common/text/printable.js';
import { AuditKind, type AuditActor, type AuditEntry } from '../../common/contract/payloads.js';

/** What a caller supplies for one audit entry; the log fills in seq, time, payload_hash and prev. */
export type AppendInput = {
  kind: AuditKind;
  actor: AuditActor;
  plugin: string | null;
  summary: string;
  payload?: unknown;
  durations?: Record<string, number> | null;
};

/** Longest summary kept, in UTF-16 code units: summaries are one-line labels; detail belongs in the payload. */
export const SUMMARY_MAX = 500;

const HEX64 = /^[0-9a-f]{64}$/;
const MAYBE_LONE_SURROGATE = /\\ud[89a-f]/;
/** A raw control character: never in canonical JSON (JSON.stringify escapes them; outside strings it is whitespace). */
const CONTROL_CHAR = /[\u0000-\u001f]/;
const KINDS: ReadonlySet<string> = new Set(AuditKind.options);
const ENTRY_KEYS: ReadonlySet<string> = new Set([
  'seq',
  'time',
  'kind',
  'actor',
  'plugin',
  'summary',
  'payload_hash',
  'durations',
  'prev',
]);
const ACTOR_KEYS: ReadonlySet<string> = new Set(['uid', 'subject', 'action', 'client']);

/** An entry ready to write: the AuditEntry, its canonical body, and the canonical payload text if any. */
export interface BuiltEntry {
  entry: AuditEntry;
  body: string;
  payloadJson: string | null;
}

/** The canonical text and content hash of a payload, computed once (a large payload is canonicalised once). */
export function canonicalPayload(payload: unknown): { json: string; hash: string } {
  let json: string;
  try {
    json = canonicalJson(payload);
  } catch (e) {
    throw new OpError('InvalidArgument', `audit payload has no canonical JSON form: ${errorText(e)}`);
  }
  return { json, hash: createHash('sha256').update(json, 'utf8').digest('hex') };
}

/** Builds the entry object (exactly the AuditEntry fields) and its canonical body; `payload` from canonicalPayload. */
export function buildEntry(
  input: AppendInput,
  seq: number,
  prev: string,
  time: string,
  payload: { json: string; hash: string } | null,
): BuiltEntry {
  const actor: AuditActor = { uid: input.actor.uid, subject: input.actor.subject };
  if (input.actor.action !== undefined) actor.action = input.actor.action;
  // the caller's own label for its session: text for people, like the summary
  if (input.actor.client !== undefined) actor.client = printable(input.actor.client, 'line');
  const entry: AuditEntry = {
    seq,
    time,
    kind: input.kind,
    actor,
    plugin: input.plugin,
    summary: oneLineSummary(input.summary),
    payload_hash: payload?.hash ?? null,
    durations: input.durations ?? null,
    prev,
  };
  // Never write an entry that verify would later reject. The object is built here with exactly the entry's
  // keys, so checking its values is enough; entryShapeProblem (which also walks the keys, ~2x the cost)
  // runs only to name what is wrong.
  const d = entry.durations;
  let durationsOk = d === null || (typeof d === 'object' && !Array.isArray(d));
  if (durationsOk && d !== null) {
    for (const key in d) {
      if (!Number.isFinite(d[key])) {
        durationsOk = false;
        break;
      }
    }
  }
  const valuesOk =
    durationsOk &&
    Number.isSafeInteger(seq) &&
    seq >= 0 &&
    typeof time === 'string' &&
    KINDS.has(entry.kind) &&
    (actor.uid === null || Number.isSafeInteger(actor.uid)) &&
    typeof actor.subject === 'string' &&
    (actor.action === undefined || typeof actor.action === 'string') &&
    (actor.client === undefined || typeof actor.client === 'string') &&
    (entry.plugin === null || typeof entry.plugin === 'string') &&
    typeof entry.summary === 'string' &&
    (entry.payload_hash === null || HEX64.test(entry.payload_hash)) &&
    typeof prev === 'string' &&
    HEX64.test(prev);
  const problem = valuesOk ? null : entryShapeProblem(entry);
  if (problem !== null) throw new OpError('InvalidArgument', `invalid audit entry: ${problem}`);
  // The same text canonicalJson gives (verify checks bodies with it), measured ~3x faster.
  const body = canonicalEntryText(entry);
  if (body === '') {
    throw new OpError(
      'InvalidArgument',
      'invalid audit entry: a string holds a lone surrogate (no canonical form)',
    );
  }
  return { entry, body, payloadJson: payload?.json ?? null };
}

/**
 * One line a person can read (no control or bidi character acts on a terminal or a page: see printable),
 * well-formed UTF-16, at most SUMMARY_MAX code units. Summaries are text for people; the payload keeps the data.
 */
function oneLineSummary(text: string): string {
  let s = printable(text, 'line');
  if (s.length > SUMMARY_MAX) {
    let cut = SUMMARY_MAX - 1;
    const code = s.charCodeAt(cut - 1);
    if (code >= 0xd800 && code <= 0xdbff) cut -= 1; // do not split a surrogate pair
    s = `${s.slice(0, cut)}…`;
  }
  return s;
}

/** Parses a stored body and checks it is an AuditEntry in canonical form; returns the reason if not. */
export function parseBody(body: string): AuditEntry | string {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return 'body is not valid JSON';
  }
  const problem = entryShapeProblem(value);
  if (problem !== null) return `body fails the AuditEntry schema: ${problem}`;
  const entry = value as AuditEntry;
  if (!isCanonicalBody(entry, body)) return 'body is not in canonical form (RFC 8785)';
  return entry;
}

/**
 * Whether `body` is canonicalJson(entry). Fast path: JSON.stringify spells primitives exactly as JCS does and
 * keeps key order, so when it reproduces the body and every object's keys are sorted, the body is canonical.
 */
function isCanonicalBody(entry: AuditEntry, body: string): boolean {
  if (JSON.stringify(entry) === body) {
    if (
      !keysSorted(entry) ||
      !keysSorted(entry.actor) ||
      (entry.durations !== null && !keysSorted(entry.durations))
    ) {
      return false;
    }
    if (!MAYBE_LONE_SURROGATE.test(body)) return true;
  }
  // Integer-like duration keys (which JSON.parse reorders) and escaped surrogates take the exact path.
  return canonicalEntryText(entry) === body;
}

/** Whether an object's own keys, in enumeration order, are in JCS order (UTF-16 code units). */
function keysSorted(obj: object): boolean {
  const keys = Object.keys(obj);
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) >= (keys[i] as string)) return false;
  }
  return true;
}

/**
 * canonicalJson(entry) for a value that passed entryShapeProblem, measured ~3x faster: the keys are known,
 * so only the durations need sorting. Primitives go through JSON.stringify exactly as canonicalJson does.
 */
export function canonicalEntryText(e: AuditEntry): string {
  // One JSON.stringify of an object built in JCS key order (measured ~2x faster than one call per field).
  // Integer-like duration keys (which every object enumerates first) and `__proto__` take the general path.
  let durations: Record<string, number> | null = null;
  if (e.durations !== null) {
    const d = e.durations;
    const keys = Object.keys(d);
    let sorted = true;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as string;
      const c = k.charCodeAt(0);
      if ((c >= 0x30 && c <= 0x39) || k === '__proto__') return canonicalEntryTextByField(e);
      if (i > 0 && !((keys[i - 1] as string) < k)) sorted = false;
    }
    // Keys already in order (the usual case) on a plain object (no inherited toJSON): it serialises as it
    // is; else a sorted copy.
    const proto: unknown = Object.getPrototypeOf(d);
    durations = sorted && (proto === Object.prototype || proto === null) ? d : {};
    if (durations !== d) sorted = false;
    if (!sorted) for (const k of keys.sort()) durations[k] = d[k] as number;
  }
  const a = e.actor;
  // JCS key order: action, client, subject, uid (a client label only on entries a relay labelled)
  const actor =
    a.client !== undefined
      ? {
          ...(a.action !== undefined ? { action: a.action } : {}),
          client: a.client,
          subject: a.subject,
          uid: a.uid,
        }
      : a.action !== undefined
        ? { action: a.action, subject: a.subject, uid: a.uid }
        : { subject: a.subject, uid: a.uid };
  const text = JSON.stringify({
    actor,
    durations,
    kind: e.kind,
    payload_hash: e.payload_hash,
    plugin: e.plugin,
    prev: e.prev,
    seq: e.seq,
    summary: e.summary,
    time: e.time,
  });
  return text.includes('\\ud') ? withoutLoneSurrogate(text, e) : text;
}

/** canonicalEntryText one field at a time: exact for any key, including integer-like duration keys. */
function canonicalEntryTextByField(e: AuditEntry): string {
  const a = e.actor;
  const actor = `{${a.action !== undefined ? `"action":${JSON.stringify(a.action)},` : ''}${
    a.client !== undefined ? `"client":${JSON.stringify(a.client)},` : ''
  }"subject":${JSON.stringify(a.subject)},"uid":${JSON.stringify(a.uid)}}`;
  let durations = 'null';
  if (e.durations !== null) {
    const d = e.durations;
    // Explicit sort: JSON.stringify would put integer-like keys first, JCS sorts all keys as strings.
    durations = `{${Object.keys(d)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${JSON.stringify(d[k])}`)
      .join(',')}}`;
  }
  const text =
    `{"actor":${actor},"durations":${durations},"kind":${JSON.stringify(e.kind)},` +
    `"payload_hash":${JSON.stringify(e.payload_hash)},"plugin":${JSON.stringify(e.plugin)},` +
    `"prev":${JSON.stringify(e.prev)},"seq":${JSON.stringify(e.seq)},"summary":${JSON.stringify(e.summary)},` +
    `"time":${JSON.stringify(e.time)}}`;
  return withoutLoneSurrogate(text, e);
}

/** JSON.stringify escapes a lone surrogate where canonicalJson rejects it: defer to canonicalJson then ('' if it has no form). */
function withoutLoneSurrogate(text: string, e: AuditEntry): string {
  if (!MAYBE_LONE_SURROGATE.test(text)) return text;
  try {
    return canonicalJson(e);
  } catch {
    return '';
  }
}

/** The fields of a body the verify walk checks against the row. */
export interface BodyFields {
  seq: number;
  time: string;
  kind: string;
  plugin: string | null;
  uid: number | null;
  summary: string;
  prev: string;
}

/** The fields of a parsed entry, as scanCanonicalBody returns them. */
export function fieldsOf(e: AuditEntry): BodyFields {
  return {
    seq: e.seq,
    time: e.time,
    kind: e.kind,
    plugin: e.plugin,
    uid: e.actor.uid,
    summary: e.summary,
    prev: e.prev,
  };
}

/**
 * Reads a body that is exactly canonicalEntryText of a valid AuditEntry whose prev is `prev`, in one pass
 * without JSON.parse, the schema check on an object or a re-serialisation (measured ~3x cheaper than
 * parseBody). Undefined for anything else, including another prev: the caller then takes parseBody, which
 * accepts what this one is unsure of or names the problem. Whenever this accepts a body, parseBody accepts
 * it too with the same field values (a property test checks it). `prev` must be 64 lowercase hex digits.
 */
export function scanCanonicalBody(body: string, prev: string): BodyFields | undefined {
  if (CONTROL_CHAR.test(body) || !isWellFormed(body)) return undefined;
  // Without a backslash no string has an escape: each ends at the next quote and is its own value.
  const plain = !body.includes('\\');
  let p = lit(body, 0, '{"actor":{');
  if (p < 0) return undefined;
  if (body.startsWith('"action":', p)) {
    p += 9;
    const end = stringEnd(body, p);
    if (end < 0 || (!plain && stringValue(body, p, end) === undefined)) return undefined;
    p = lit(body, end + 1, ',');
  }
  // (the native walk leaves entries with a client label to this reader)
  if (p >= 0 && body.startsWith('"client":', p)) {
    p += 9;
    const end = stringEnd(body, p);
    if (end < 0 || (!plain && stringValue(body, p, end) === undefined)) return undefined;
    p = lit(body, end + 1, ',');
  }
  p = lit(body, p, '"subject":');
  if (p < 0) return undefined;
  let end = stringEnd(body, p);
  if (end < 0 || (!plain && stringValue(body, p, end) === undefined)) return undefined;
  p = lit(body, end + 1, ',"uid":');
  if (p < 0) return undefined;
  let uid: number | null = null;
  if (body.startsWith('null', p)) {
    p += 4;
  } else {
    end = integerEnd(body, p);
    if (end < 0) return undefined;
    uid = Number(body.slice(p, end));
    if (!Number.isSafeInteger(uid)) return undefined;
    p = end;
  }
  p = lit(body, p, '},"durations":');
  if (p < 0) return undefined;
  if (body.startsWith('null', p)) {
    p += 4;
  } else {
    p = lit(body, p, '{');
    if (p < 0) return undefined;
    if (body.charCodeAt(p) === 0x7d) {
      p += 1;
    } else {
      let prevKey: string | undefined;
      for (;;) {
        end = stringEnd(body, p);
        const key = end < 0 ? undefined : plain ? body.slice(p + 1, end) : stringValue(body, p, end);
        // JCS order is UTF-16 code unit order, which `<` is; strictly ascending also rules out duplicates.
        if (key === undefined || (prevKey !== undefined && !(prevKey < key))) return undefined;
        prevKey = key;
        p = lit(body, end + 1, ':');
        if (p < 0) return undefined;
        end = numberEnd(body, p);
        if (end < 0) return undefined;
        p = end;
        const c = body.charCodeAt(p);
        p += 1;
        if (c === 0x7d) break;
        if (c !== 0x2c) return undefined;
      }
    }
  }
  p = lit(body, p, ',"kind":');
  if (p < 0) return undefined;
  end = stringEnd(body, p);
  const kind = end < 0 ? undefined : plain ? body.slice(p + 1, end) : stringValue(body, p, end);
  if (kind === undefined || !KINDS.has(kind)) return undefined;
  p = lit(body, end + 1, ',"payload_hash":');
  if (p < 0) return undefined;
  if (body.startsWith('null', p)) {
    p += 4;
  } else {
    end = stringEnd(body, p);
    if (end !== p + 65 || !HEX64.test(body.slice(p + 1, end))) return undefined;
    p = end + 1;
  }
  p = lit(body, p, ',"plugin":');
  if (p < 0) return undefined;
  let plugin: string | null = null;
  if (body.startsWith('null', p)) {
    p += 4;
  } else {
    end = stringEnd(body, p);
    const value = end < 0 ? undefined : plain ? body.slice(p + 1, end) : stringValue(body, p, end);
    if (value === undefined) return undefined;
    plugin = value;
    p = end + 1;
  }
  p = lit(body, p, ',"prev":"');
  if (p < 0 || !body.startsWith(prev, p) || body.charCodeAt(p + 64) !== 0x22) return undefined;
  p = lit(body, p + 65, ',"seq":');
  if (p < 0) return undefined;
  end = integerEnd(body, p);
  if (end < 0) return undefined;
  const seq = Number(body.slice(p, end));
  if (!Number.isSafeInteger(seq) || seq < 0) return undefined;
  p = lit(body, end, ',"summary":');
  if (p < 0) return undefined;
  end = stringEnd(body, p);
  const summary = end < 0 ? undefined : plain ? body.slice(p + 1, end) : stringValue(body, p, end);
  if (summary === undefined) return undefined;
  p = lit(body, end + 1, ',"time":');
  if (p < 0) return undefined;
  end = stringEnd(body, p);
  const time = end < 0 ? undefined : plain ? body.slice(p + 1, end) : stringValue(body, p, end);
  if (time === undefined || end + 2 !== body.length || body.charCodeAt(end + 1) !== 0x7d) return undefined;
  return { seq, time, kind, plugin, uid, summary, prev };
}

/** The position after `text` when the body has it at `p`, else -1. */
function lit(body: string, p: number, text: string): number {
  return p >= 0 && body.startsWith(text, p) ? p + text.length : -1;
}

/** Index of the quote that closes the string opening at `p` (an even run of backslashes before it), or -1. */
function stringEnd(body: string, p: number): number {
  if (body.charCodeAt(p) !== 0x22) return -1;
  let end = body.indexOf('"', p + 1);
  while (end > 0 && body.charCodeAt(end - 1) === 0x5c) {
    let k = end - 1;
    while (body.charCodeAt(k) === 0x5c) k -= 1;
    if ((end - 1 - k) % 2 === 0) break;
    end = body.indexOf('"', end + 1);
  }
  return end;
}

/** The value of the string at [p, end] when it is spelled exactly as JSON.stringify spells that value. */
function stringValue(body: string, p: number, end: number): string | undefined {
  const raw = body.slice(p + 1, end);
  // No escape, no control character, well-formed (both checked on the whole body): JSON.stringify(raw) is "raw".
  if (!raw.includes('\\')) return raw;
  const quoted = body.slice(p, end + 1);
  let value: unknown;
  try {
    value = JSON.parse(quoted);
  } catch {
    return undefined;
  }
  return typeof value === 'string' && isWellFormed(value) && JSON.stringify(value) === quoted
    ? value
    : undefined;
}

/** End of an integer spelled canonically (-?(0|[1-9][0-9]*), at most 16 digits) at `p`, or -1. */
function integerEnd(body: string, p: number): number {
  let i = body.charCodeAt(p) === 0x2d ? p + 1 : p;
  const first = body.charCodeAt(i);
  if (first === 0x30) return i === p ? i + 1 : -1; // "0"; "-0" is not canonical
  if (first < 0x31 || first > 0x39) return -1;
  const digits = i;
  for (i += 1; ; i++) {
    const c = body.charCodeAt(i);
    if (!(c >= 0x30 && c <= 0x39)) break;
  }
  return i - digits > 16 ? -1 : i;
}

/**
 * End of a finite number spelled as JSON.stringify spells it (which is JCS's spelling) at `p`, or -1.
 * Fast path: a plain decimal (canonical integer part, no trailing fraction zero, no exponent) of at most 15
 * significant digits and at least 1e-6 in magnitude is its own shortest round-trip spelling (15 digits
 * always survive decimal -> double -> decimal), so it is canonical. Anything else is checked with
 * JSON.stringify(Number(token)).
 */
function numberEnd(body: string, p: number): number {
  let i = body.charCodeAt(p) === 0x2d ? p + 1 : p;
  const intStart = i;
  const first = body.charCodeAt(i);
  if (first === 0x30) i += 1;
  else if (first >= 0x31 && first <= 0x39) while (isDigit(body.charCodeAt(++i)));
  else return anyNumberEnd(body, p);
  const intDigits = i - intStart;
  let significant = first === 0x30 ? 0 : intDigits;
  if (body.charCodeAt(i) === 0x2e) {
    const fracStart = i + 1;
    while (isDigit(body.charCodeAt(++i)));
    if (i === fracStart || body.charCodeAt(i - 1) === 0x30) return anyNumberEnd(body, p);
    if (significant === 0) {
      let z = fracStart;
      while (body.charCodeAt(z) === 0x30) z += 1;
      if (z - fracStart > 5) return anyNumberEnd(body, p);
      significant = i - z;
    } else {
      significant += i - fracStart;
    }
  }
  const next = body.charCodeAt(i);
  if (next === 0x65 || next === 0x45 || next === 0x2b || next === 0x2d || next === 0x2e) {
    return anyNumberEnd(body, p);
  }
  // "-0" and friends, and long numbers, take the exact check.
  if (significant > 15 || intDigits > 15 || (significant === 0 && intStart !== p))
    return anyNumberEnd(body, p);
  return i;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function anyNumberEnd(body: string, p: number): number {
  let i = p;
  for (
    let c = body.charCodeAt(i);
    c === 0x2d || c === 0x2b || c === 0x2e || c === 0x45 || c === 0x65 || (c >= 0x30 && c <= 0x39);
    c = body.charCodeAt(++i)
  );
  const token = body.slice(p, i);
  const n = Number(token);
  return token !== '' && Number.isFinite(n) && JSON.stringify(n) === token ? i : -1;
}

/** String.prototype.isWellFormed (Node 20; the ES2023 lib does not declare it): no lone surrogate. */
function isWellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}

/**
 * The AuditEntry schema checked by hand: stricter than the zod one (no unknown keys, hashes are 64 hex
 * digits) and it names the bad field. Measured ~0.5 µs per entry against ~0.8 µs for zod's safeParse.
 */
export function entryShapeProblem(value: unknown): string | null {
  if (!isPlainObject(value)) return 'not an object';
  for (const key of Object.keys(value)) {
    if (!ENTRY_KEYS.has(key)) return `unknown field ${JSON.stringify(key)}`;
  }
  const v = value;
  if (!Number.isSafeInteger(v.seq) || (v.seq as number) < 0) return 'seq is not a non-negative integer';
  if (typeof v.time !== 'string') return 'time is not a string';
  if (typeof v.kind !== 'string' || !KINDS.has(v.kind)) return 'kind is not an audit kind';
  const actor = v.actor;
  if (!isPlainObject(actor)) return 'actor is not an object';
  for (const key of Object.keys(actor)) {
    if (!ACTOR_KEYS.has(key)) return `unknown actor field ${JSON.stringify(key)}`;
  }
  if (actor.uid !== null && !Number.isSafeInteger(actor.uid)) return 'actor.uid is not an integer or null';
  if (typeof actor.subject !== 'string') return 'actor.subject is not a string';
  if ('action' in actor && typeof actor.action !== 'string') return 'actor.action is not a string';
  if ('client' in actor && typeof actor.client !== 'string') return 'actor.client is not a string';
  if (v.plugin !== null && typeof v.plugin !== 'string') return 'plugin is not a string or null';
  if (typeof v.summary !== 'string') return 'summary is not a string';
  if (v.payload_hash !== null && (typeof v.payload_hash !== 'string' || !HEX64.test(v.payload_hash))) {
    return 'payload_hash is not a hash or null';
  }
  const durations = v.durations;
  if (durations !== null) {
    if (!isPlainObject(durations)) return 'durations is not an object or null';
    for (const key of Object.keys(durations)) {
      if (!Number.isFinite(durations[key])) return `durations.${key} is not a finite number`;
    }
  }
  if (typeof v.prev !== 'string' || !HEX64.test(v.prev)) return 'prev is not a hash';
  return null;
}

/** Names the first index column that disagrees with the body (the body is the source of truth). */
export function indexMismatch(
  entry: {
    time: string;
    kind: string;
    plugin: string | null;
    actor: { uid: number | null };
    summary: string;
  },
  time: unknown,
  kind: unknown,
  plugin: unknown,
  actorUid: unknown,
  summary: unknown,
): string | null {
  const columns: [string, unknown, unknown][] = [
    ['time', time, entry.time],
    ['kind', kind, entry.kind],
    ['plugin', plugin, entry.plugin],
    ['actor_uid', actorUid, entry.actor.uid],
    ['summary', summary, entry.summary],
  ];
  for (const [name, stored, inBody] of columns) {
    if (stored !== inBody) {
      return `index column ${name} (${JSON.stringify(stored)}) does not match the body (${JSON.stringify(inBody)})`;
    }
  }
  return null;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
