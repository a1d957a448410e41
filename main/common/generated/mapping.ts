import { readToml } from '../text/toml.js';
import { z } from 'zod';

// semantic-mapping.toml, the original project's format (DESIGN.md section 3), read as data: which
// properties are state, which methods apply them, how safe they are. Nothing in it is executed:
// hooks, pre-checks and rollback name methods of its own [methods] table, which the generator
// resolves against the service's introspection; anything else is refused.

const SNAKE = /^[a-z][a-z0-9_]*$/;
const methodName = z.string().regex(SNAKE, 'the snake_case name of a method in [methods]');

/** What `validation` may say of a value: a small JSON Schema subset, so it stays data. */
const Validation = z
  .object({
    pattern: z.string().max(1000).optional(),
    enum: z.array(z.union([z.string(), z.number(), z.boolean()])).optional(),
    minimum: z.number().optional(),
    maximum: z.number().optional(),
    minLength: z.number().int().nonnegative().optional(),
    maxLength: z.number().int().nonnegative().optional(),
    minItems: z.number().int().nonnegative().optional(),
    maxItems: z.number().int().nonnegative().optional(),
  })
  .strict();
export type Validation = z.infer<typeof Validation>;

const MappedMethod = z
  .object({
    safe: z.boolean().default(false),
    side_effects: z.array(z.string()).default([]),
    requires_confirmation: z.boolean().default(false),
    idempotent: z.boolean().default(false),
    /** One entry per input argument: "value" (the desired value) or a key of `defaults`. */
    args_mapping: z.array(z.string().regex(/^[a-z][a-z0-9_]*$/)).default([]),
    arg_types: z.array(z.string().max(255)).optional(),
    defaults: z.record(z.string(), z.unknown()).default({}),
    validation: Validation.optional(),
    pre_check: methodName.optional(),
    dry_run_supported: z.boolean().default(false),
    dry_run_method: methodName.optional(),
    returns: z.string().optional(),
  })
  .strict();
export type MappedMethod = z.infer<typeof MappedMethod>;

const MappedProperty = z
  .object({
    getter_method: methodName.optional(),
    setter_method: methodName.optional(),
    property_type: z.string().max(255).optional(),
    writable: z.boolean().default(false),
    requires_restart: z.boolean().default(false),
    validation: Validation.optional(),
  })
  .strict();

export const DIFF_STRATEGIES = [
  'set_difference',
  'value_comparison',
  'merge_strategy',
  'service_state_diff',
  'none',
] as const;
export type DiffStrategy = (typeof DIFF_STRATEGIES)[number];

const StateKey = z
  .object({
    /** A property of the service (its D-Bus name), or a method of [methods] that takes no argument. */
    query_method: z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/),
    apply_method: methodName.optional(),
    remove_method: methodName.optional(),
    diff_strategy: z.enum(DIFF_STRATEGIES).default('value_comparison'),
  })
  .strict();
export type StateKey = z.infer<typeof StateKey>;

export const SemanticMapping = z
  .object({
    service: z
      .object({
        name: z.string().regex(/^[A-Za-z_-][A-Za-z0-9_-]*(\.[A-Za-z_-][A-Za-z0-9_-]*)+$/, 'a D-Bus bus name'),
        version: z.string().optional(),
        api_version: z.union([z.string(), z.number()]).optional(),
      })
      .strict(),
    methods: z.record(z.string().regex(SNAKE, 'snake_case'), MappedMethod).default({}),
    properties: z.record(z.string(), MappedProperty).default({}),
    state_mapping: z
      .record(z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'lower-case letters, digits and "_"'), StateKey)
      .default({}),
    safety: z
      .object({
        pre_apply_hook: methodName.optional(),
        post_apply_hook: methodName.optional(),
        max_batch_size: z.number().int().positive().optional(),
        min_disk_space_mb: z.number().nonnegative().optional(),
        protected_services: z.array(z.string()).default([]),
        operation_timeout: z.number().positive().max(3600).optional(),
        rollback_method: methodName.optional(),
      })
      .strict()
      .default({ protected_services: [] }),
  })
  .strict();
export type SemanticMapping = z.infer<typeof SemanticMapping>;

export interface MappingError {
  file: string;
  message: string;
  line?: number;
  column?: number;
  pointer?: string;
}

export type MappingResult = { ok: true; value: SemanticMapping } | { ok: false; error: MappingError };

const MAX_BYTES = 1024 * 1024;

/** Reads semantic-mapping.toml text; every outcome is a value (TOML errors with line and column). */
export function parseMapping(text: string, file: string): MappingResult {
  if (typeof text !== 'string' || text.length > MAX_BYTES)
    return { ok: false, error: { file, message: `${file}: not text of at most ${MAX_BYTES} bytes` } };
  const read = readToml(text, file, SemanticMapping);
  if (!read.ok) {
    const { code: _code, ...error } = read.problem;
    return { ok: false, error };
  }
  const m = read.value;
  // hooks, pre-checks, dry runs and rollback name only methods of this mapping: never a command
  const named: [string, string | undefined][] = [
    ['safety.pre_apply_hook', m.safety.pre_apply_hook],
    ['safety.post_apply_hook', m.safety.post_apply_hook],
    ['safety.rollback_method', m.safety.rollback_method],
    ...Object.entries(m.methods).flatMap(([n, meth]): [string, string | undefined][] => [
      [`methods.${n}.pre_check`, meth.pre_check],
      [`methods.${n}.dry_run_method`, meth.dry_run_method],
    ]),
    ...Object.entries(m.properties).flatMap(([n, p]): [string, string | undefined][] => [
      [`properties.${n}.getter_method`, p.getter_method],
      [`properties.${n}.setter_method`, p.setter_method],
    ]),
    ...Object.entries(m.state_mapping).flatMap(([k, s]): [string, string | undefined][] => [
      [`state_mapping.${k}.apply_method`, s.apply_method],
      [`state_mapping.${k}.remove_method`, s.remove_method],
    ]),
  ];
  for (const [key, name] of named) {
    if (name !== undefined && !Object.hasOwn(m.methods, name)) {
      return {
        ok: false,
        error: {
          file,
          pointer: `/${key.replace(/\./g, '/')}`,
          message: `${file}: ${key}: ${JSON.stringify(name)} is not a method of this mapping's [methods] (hooks and rollback name only D-Bus methods the mapping allows)`,
        },
      };
    }
  }
  for (const [n, meth] of Object.entries(m.methods)) {
    for (const a of meth.args_mapping) {
      if (a !== 'value' && !Object.hasOwn(meth.defaults, a))
        return {
          ok: false,
          error: {
            file,
            pointer: `/methods/${n}/args_mapping`,
            message: `${file}: methods.${n}.args_mapping: ${a} is neither "value" nor a key of its defaults`,
          },
        };
    }
  }
  return { ok: true, value: m };
}
