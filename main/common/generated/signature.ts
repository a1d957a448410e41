/** A JSON Schema as data (the SDK's JsonSchema). */
type JsonSchema = Record<string, unknown>;

// D-Bus type signatures (the specification's "Type system") as JSON Schema of the values a plugin
// reports: every type has one schema, so a generated plugin's section is validated like any other.

/** One complete type of a signature, parsed. */
export type DbusType =
  | { kind: 'basic'; code: BasicCode }
  | { kind: 'variant' }
  | { kind: 'array'; of: DbusType }
  | { kind: 'dict'; key: DbusType; value: DbusType }
  | { kind: 'struct'; fields: DbusType[] };

type BasicCode = 'y' | 'b' | 'n' | 'q' | 'i' | 'u' | 'x' | 't' | 'd' | 'h' | 's' | 'o' | 'g';
const BASIC = new Set<string>(['y', 'b', 'n', 'q', 'i', 'u', 'x', 't', 'd', 'h', 's', 'o', 'g']);
/** The specification's limits: 255 bytes a signature, 32 nested arrays and 32 nested structs. */
const MAX_SIGNATURE = 255;
const MAX_DEPTH = 32;

/** Parses a signature into its complete types; a malformed one gives a reason, never a throw. */
export function parseSignature(sig: string): { ok: true; types: DbusType[] } | { ok: false; reason: string } {
  if (sig.length > MAX_SIGNATURE) return { ok: false, reason: `longer than ${MAX_SIGNATURE} characters` };
  const types: DbusType[] = [];
  let at = 0;
  const one = (arrays: number, structs: number): DbusType => {
    const c = sig[at];
    if (c === undefined) throw new SignatureError('ends inside a type');
    at++;
    if (BASIC.has(c)) return { kind: 'basic', code: c as BasicCode };
    if (c === 'v') return { kind: 'variant' };
    if (c === 'a') {
      if (arrays >= MAX_DEPTH) throw new SignatureError(`more than ${MAX_DEPTH} nested arrays`);
      if (sig[at] === '{') {
        at++;
        const key = one(arrays + 1, structs);
        if (key.kind !== 'basic')
          throw new SignatureError(`a dict entry's key must be a basic type (at ${at})`);
        const value = one(arrays + 1, structs);
        if (sig[at] !== '}') throw new SignatureError(`a dict entry has exactly two types (at ${at})`);
        at++;
        return { kind: 'dict', key, value };
      }
      return { kind: 'array', of: one(arrays + 1, structs) };
    }
    if (c === '(') {
      if (structs >= MAX_DEPTH) throw new SignatureError(`more than ${MAX_DEPTH} nested structs`);
      const fields: DbusType[] = [];
      while (sig[at] !== ')') {
        if (sig[at] === undefined) throw new SignatureError('a struct is not closed');
        fields.push(one(arrays, structs + 1));
      }
      at++;
      if (fields.length === 0) throw new SignatureError('an empty struct');
      return { kind: 'struct', fields };
    }
    throw new SignatureError(`unexpected ${JSON.stringify(c)} at ${at - 1}`);
  };
  try {
    while (at < sig.length) types.push(one(0, 0));
  } catch (e) {
    if (e instanceof SignatureError) return { ok: false, reason: e.message };
    throw e;
  }
  return { ok: true, types };
}

/** Parses a signature that must be exactly one complete type (a property's). */
export function parseSingleType(sig: string): { ok: true; type: DbusType } | { ok: false; reason: string } {
  const r = parseSignature(sig);
  if (!r.ok) return r;
  const [type, ...rest] = r.types;
  if (type === undefined || rest.length > 0) return { ok: false, reason: 'not exactly one complete type' };
  return { ok: true, type };
}

class SignatureError extends Error {}

const INTEGER_RANGES: Partial<Record<BasicCode, [number, number]>> = {
  y: [0, 255],
  n: [-32768, 32767],
  q: [0, 65535],
  i: [-2147483648, 2147483647],
  u: [0, 4294967295],
  h: [0, 4294967295],
};

/**
 * The JSON Schema of a value of this type as a plugin reports it (see `toJson`): 64-bit integers
 * are numbers while they are exact, else decimal strings; byte arrays are arrays of integers;
 * dicts are objects (keys as strings); structs are fixed-length arrays; a variant is any JSON.
 */
export function schemaOf(t: DbusType): JsonSchema {
  switch (t.kind) {
    case 'variant':
      return { description: 'a D-Bus variant: any value' };
    case 'array':
      return { type: 'array', items: schemaOf(t.of) };
    case 'dict':
      return { type: 'object', additionalProperties: schemaOf(t.value) };
    case 'struct':
      return {
        type: 'array',
        prefixItems: t.fields.map(schemaOf),
        items: false,
        minItems: t.fields.length,
        maxItems: t.fields.length,
      };
    case 'basic': {
      const range = INTEGER_RANGES[t.code];
      if (range !== undefined) return { type: 'integer', minimum: range[0], maximum: range[1] };
      switch (t.code) {
        case 'b':
          return { type: 'boolean' };
        case 'd':
          return { type: 'number' };
        case 'x':
          return { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^-?[0-9]+$' }] };
        case 't':
          return {
            anyOf: [
              { type: 'integer', minimum: 0 },
              { type: 'string', pattern: '^[0-9]+$' },
            ],
          };
        case 'o':
          return { type: 'string', pattern: '^/$|^(/[A-Za-z0-9_]+)+$' };
        case 'g':
          return { type: 'string', maxLength: MAX_SIGNATURE };
        default:
          return { type: 'string' };
      }
    }
  }
}

/** The one-letter-per-type text of a parsed type (for messages and for writing a value back). */
export function signatureOf(t: DbusType): string {
  switch (t.kind) {
    case 'basic':
      return t.code;
    case 'variant':
      return 'v';
    case 'array':
      return `a${signatureOf(t.of)}`;
    case 'dict':
      return `a{${signatureOf(t.key)}${signatureOf(t.value)}}`;
    case 'struct':
      return `(${t.fields.map(signatureOf).join('')})`;
  }
}

/**
 * A value as dbus-next gives it, as plain JSON: BigInt to a number while exact (else a decimal
 * string), Buffer to an array of bytes, a Variant to its value, a Map to an object.
 */
export function toJson(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (value === null || typeof value !== 'object') return value;
  if (Buffer.isBuffer(value)) return [...value];
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) out[String(k)] = toJson(v);
    return out;
  }
  if (Array.isArray(value)) return value.map(toJson);
  const o = value as Record<string, unknown>;
  if (typeof o['signature'] === 'string' && 'value' in o && Object.keys(o).length === 2)
    return toJson(o['value']);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = toJson(v);
  return out;
}

/**
 * A JSON value as dbus-next sends it for this type (the reverse of toJson): 64-bit integers as
 * BigInt, byte arrays as Buffer, dicts from objects. A value of the wrong shape gives a reason.
 */
export function fromJson(
  t: DbusType,
  value: unknown,
): { ok: true; value: unknown } | { ok: false; reason: string } {
  const bad = (what: string): { ok: false; reason: string } => ({
    ok: false,
    reason: `expected ${what} for ${signatureOf(t)}, got ${JSON.stringify(value)?.slice(0, 60) ?? String(value)}`,
  });
  switch (t.kind) {
    case 'variant':
      return { ok: false, reason: 'a variant argument needs a signature: a mapping cannot send one' };
    case 'array': {
      if (
        t.of.kind === 'basic' &&
        t.of.code === 'y' &&
        Array.isArray(value) &&
        value.every((b) => Number.isInteger(b) && (b as number) >= 0 && (b as number) <= 255)
      )
        return { ok: true, value: Buffer.from(value as number[]) };
      if (!Array.isArray(value)) return bad('an array');
      const out: unknown[] = [];
      for (const v of value) {
        const r = fromJson(t.of, v);
        if (!r.ok) return r;
        out.push(r.value);
      }
      return { ok: true, value: out };
    }
    case 'dict': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('an object');
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const r = fromJson(t.value, v);
        if (!r.ok) return r;
        out[k] = r.value;
      }
      return { ok: true, value: out };
    }
    case 'struct': {
      if (!Array.isArray(value) || value.length !== t.fields.length)
        return bad(`an array of ${t.fields.length}`);
      const out: unknown[] = [];
      for (const [i, f] of t.fields.entries()) {
        const r = fromJson(f, value[i]);
        if (!r.ok) return r;
        out.push(r.value);
      }
      return { ok: true, value: out };
    }
    case 'basic': {
      if (t.code === 'b') return typeof value === 'boolean' ? { ok: true, value } : bad('a boolean');
      if (t.code === 'd') return typeof value === 'number' ? { ok: true, value } : bad('a number');
      if (t.code === 's' || t.code === 'o' || t.code === 'g')
        return typeof value === 'string' ? { ok: true, value } : bad('a string');
      if (t.code === 'x' || t.code === 't') {
        if (
          (typeof value === 'number' && Number.isInteger(value)) ||
          (typeof value === 'string' && /^-?[0-9]{1,20}$/.test(value))
        )
          return { ok: true, value: BigInt(value) };
        return bad('an integer');
      }
      const range = INTEGER_RANGES[t.code];
      if (
        range !== undefined &&
        typeof value === 'number' &&
        Number.isInteger(value) &&
        value >= range[0] &&
        value <= range[1]
      )
        return { ok: true, value };
      return bad('an integer in range');
    }
  }
}
