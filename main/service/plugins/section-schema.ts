import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { OpError } from '../../common/contract/index.js';
import type { JsonSchema } from '../../sdk/index.js';

/** A compiled section schema: validates one plugin's section and names the first problem. */
export interface SectionValidator {
  /** undefined when valid; else the pointer below the section and a message for a person. */
  (value: unknown): { pointer: string; message: string } | undefined;
}

// One Ajv for every plugin: schemas are data (from zod for built-ins, JSON files for the rest).
// Strict mode refuses unknown keywords, so a typo in a schema is an error at load, not a hole.
const ajv = new Ajv2020({
  strict: true,
  strictTuples: false,
  // a `required` inside oneOf/anyOf branches (one of two keys) is valid JSON Schema
  strictRequired: false,
  allErrors: false,
  verbose: true,
  // `discriminator` (OpenAPI's): a oneOf of objects told apart by one property is checked against
  // the branch that property names, not against every branch (the openflow plugin's actions)
  discriminator: true,
});
ajv.addKeyword({ keyword: 'x-secret', schemaType: 'boolean' });
// A message for people where the keyword's own would be opaque (e.g. a pattern)
ajv.addKeyword({ keyword: 'x-error', schemaType: 'string' });

/** Compiles a plugin's section schema; a schema Ajv refuses is an error naming the plugin. */
export function compileSection(plugin: string, schema: JsonSchema): SectionValidator {
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(withoutId(schema));
  } catch (e) {
    throw new OpError(
      'SchemaError',
      `plugin ${plugin}: its section schema is invalid: ${e instanceof Error ? e.message : String(e)}`,
      {
        plugin,
      },
    );
  }
  return (value) => {
    if (validate(value)) return undefined;
    const error = validate.errors?.[0];
    return error === undefined ? { pointer: '', message: 'invalid' } : describe(error);
  };
}

/** Ajv keeps schemas by $id; two plugins may reuse one, so each compiles without it. */
function withoutId(schema: JsonSchema): JsonSchema {
  const { $id: _id, ...rest } = schema;
  return rest;
}

function describe(e: ErrorObject): { pointer: string; message: string } {
  const custom = (e.parentSchema as Record<string, unknown> | undefined)?.['x-error'];
  const params = e.params as Record<string, unknown>;
  if (e.keyword === 'additionalProperties' && typeof params['additionalProperty'] === 'string') {
    const key = params['additionalProperty'];
    const known = Object.keys(
      ((e.parentSchema as Record<string, unknown> | undefined)?.['properties'] ?? {}) as object,
    );
    return {
      pointer: `${e.instancePath}/${escape(key)}`,
      message: `unknown key "${key}"${known.length > 0 ? ` (known: ${known.join(', ')})` : ''}`,
    };
  }
  if (e.keyword === 'required' && typeof params['missingProperty'] === 'string') {
    return { pointer: e.instancePath, message: `"${params['missingProperty']}" is required` };
  }
  if (e.keyword === 'enum' && Array.isArray(params['allowedValues'])) {
    return {
      pointer: e.instancePath,
      message: `must be one of ${params['allowedValues'].map((v) => JSON.stringify(v)).join(', ')}`,
    };
  }
  return { pointer: e.instancePath, message: typeof custom === 'string' ? custom : (e.message ?? 'invalid') };
}

function escape(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}
