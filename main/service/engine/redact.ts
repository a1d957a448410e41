import { REDACTED_VALUE } from '../../common/contract/index.js';
import type { JsonSchema } from '../../sdk/index.js';

/** What a secret value is shown as: the contract's marker, which clients recognise. */
export const REDACTED = REDACTED_VALUE;

/** Whether a schema marks any field below it `"x-secret": true` (memoised: schemas are loaded once). */
const secretBelow = new WeakMap<object, boolean>();
function holdsSecret(node: unknown): boolean {
  if (node === null || typeof node !== 'object') return false;
  const known = secretBelow.get(node);
  if (known !== undefined) return known;
  secretBelow.set(node, false); // a cycle, if any, holds no secret by that path
  const found =
    (node as JsonSchema)['x-secret'] === true ||
    (Array.isArray(node) ? node.some(holdsSecret) : Object.values(node).some(holdsSecret));
  secretBelow.set(node, found);
  return found;
}

/**
 * A copy of a value with every field its JSON Schema marks `"x-secret": true` replaced by a marker,
 * so secrets never reach plans shown, audit payloads or summaries. Below a schema without any
 * secret the value itself is returned (a 10,000-flow section is not copied on every plan).
 */
export function redactSecrets(value: unknown, schema: JsonSchema | undefined): unknown {
  if (schema === undefined || !holdsSecret(schema)) return value;
  if (schema['x-secret'] === true) return value === undefined ? value : REDACTED;
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const branches = schema[key];
    if (Array.isArray(branches)) {
      let v = value;
      for (const b of branches) v = redactSecrets(v, b as JsonSchema);
      value = v;
    }
  }
  if (Array.isArray(value)) {
    const items = schema['items'] as JsonSchema | undefined;
    return value.map((v) => redactSecrets(v, items));
  }
  if (value !== null && typeof value === 'object') {
    const props = (schema['properties'] ?? {}) as Record<string, JsonSchema>;
    const extra = schema['additionalProperties'];
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const sub = Object.hasOwn(props, k)
        ? props[k]
        : typeof extra === 'object'
          ? (extra as JsonSchema)
          : undefined;
      out[k] = redactSecrets(v, sub);
    }
    return out;
  }
  return value;
}

/** Whether the value at these path segments (below a section) is, or lies inside, a secret field. */
export function isSecretPath(schema: JsonSchema | undefined, segments: readonly string[]): boolean {
  let node = schema;
  for (let i = 0; ; i++) {
    if (node === undefined) return false;
    if (node['x-secret'] === true) return true;
    for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
      const branches = node[key];
      if (Array.isArray(branches) && branches.some((b) => isSecretPath(b as JsonSchema, segments.slice(i)))) {
        return true;
      }
    }
    const seg = segments[i];
    if (seg === undefined) return false;
    const props = (node['properties'] ?? {}) as Record<string, JsonSchema>;
    const extra = node['additionalProperties'];
    const items = node['items'];
    if (Object.hasOwn(props, seg)) node = props[seg];
    else if (/^\d+$/.test(seg) && typeof items === 'object' && items !== null) node = items as JsonSchema;
    else node = typeof extra === 'object' && extra !== null ? (extra as JsonSchema) : undefined;
  }
}

/** value as it may be shown when it sits at these path segments (below a section): secrets inside it redacted too. */
export function redactAt(
  schema: JsonSchema | undefined,
  segments: readonly string[],
  value: unknown,
): unknown {
  if (value === undefined || schema === undefined || !holdsSecret(schema)) return value;
  if (isSecretPath(schema, segments)) return REDACTED;
  // place the value at its path, so the schema walk of redactSecrets reaches what lies below it
  let wrapped: unknown = value;
  for (const seg of [...segments].reverse()) {
    if (/^\d+$/.test(seg)) {
      const arr: unknown[] = [];
      arr[Number(seg)] = wrapped;
      wrapped = arr;
    } else wrapped = { [seg]: wrapped };
  }
  let out = redactSecrets(wrapped, schema);
  for (const seg of segments) out = (out as Record<string, unknown>)[seg];
  return out;
}
