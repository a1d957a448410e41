import { parse, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { OpError } from '../contract/index.js';

/** Why a TOML file was refused: its place (line and column for syntax, a JSON pointer for the schema). */
export interface TomlProblem {
  code: 'ParseError' | 'SchemaError';
  file: string;
  line?: number;
  column?: number;
  pointer?: string;
  /** A sentence that starts with the place: `file:line:column: ...` or `file: key.path: ...`. */
  message: string;
}

export type TomlResult<T> = { ok: true; value: T } | { ok: false; problem: TomlProblem };

/**
 * Parses TOML 1.0 text and checks it against a schema; every outcome is a value. The one reading of
 * plugin manifests, the core's config and semantic mappings, so their errors read alike.
 */
export function readToml<S extends z.ZodType>(
  text: string,
  file: string,
  schema: S,
): TomlResult<z.output<S>> {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    if (e instanceof TomlError) {
      const what = e.message.split('\n')[0] ?? '';
      return {
        ok: false,
        problem: {
          code: 'ParseError',
          file,
          line: e.line,
          column: e.column,
          message: `${file}:${e.line}:${e.column}: invalid TOML: ${what}`,
        },
      };
    }
    const why = e instanceof Error ? e.message : String(e);
    return { ok: false, problem: { code: 'ParseError', file, message: `${file}: invalid TOML: ${why}` } };
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0];
  const path = issue?.path.map(String) ?? [];
  return {
    ok: false,
    problem: {
      code: 'SchemaError',
      file,
      // RFC 6901: '' is the whole document
      pointer: path.map((k) => `/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`).join(''),
      message: `${file}: ${path.length > 0 ? `${path.join('.')}: ` : ''}${issue?.message ?? 'invalid'}`,
    },
  };
}

/** readToml for callers that throw: the problem as an OpError with its place in the details. */
export function readTomlOrThrow<S extends z.ZodType>(text: string, file: string, schema: S): z.output<S> {
  const r = readToml(text, file, schema);
  if (r.ok) return r.value;
  const { code, message, ...where } = r.problem;
  throw new OpError(code, message, where);
}
