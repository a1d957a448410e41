import { createHash } from 'node:crypto';
import { canonicalJson } from '../canonical/jcs.js';
import { OpError } from '../contract/errors.js';
import { AuditKind, type AuditActor, type AuditEntry } from '../contract/payloads.js';

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
const ACTOR_KEYS: ReadonlySet<string> = new Set(['uid', 'subject', 'action']);

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
  // Never write an entry that verify would later reject.
  const problem = entryShapeProblem(entry);
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

/** One line, well-formed UTF-16, at most SUMMARY_MAX code units. */
function oneLineSummary(text: string): string {
  let s = text
    .replace(/\r\n|[\n\r\v\f\u0085\u2028\u2029]/g, ' ')
    .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
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
  const a = e.actor;
  const actor = `{${a.action !== undefined ? `"action":${JSON.stringify(a.action)},` : ''}"subject":${JSON.stringify(
    a.subject,
  )},"uid":${JSON.stringify(a.uid)}}`;
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
  // JSON.stringify escapes a lone surrogate where canonicalJson rejects it: defer to canonicalJson then.
  if (MAYBE_LONE_SURROGATE.test(text)) {
    try {
      return canonicalJson(e);
    } catch {
      return '';
    }
  }
  return text;
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
  entry: AuditEntry,
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
