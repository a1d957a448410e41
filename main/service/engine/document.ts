import {
  findNodeAtLocation,
  getNodePath,
  parseTree,
  printParseErrorCode,
  type Node,
  type ParseError,
} from 'jsonc-parser';
import { z } from 'zod';
import { OpError, type ErrorWhere } from '../../common/contract/index.js';

/** The desired-state document, in the original project's format: `{"version":1,"plugins":{...}}`. */
export interface DesiredDocument {
  version: 1;
  plugins: Record<string, unknown>;
}

const TopLevel = z
  .object({
    $schema: z.string().optional(),
    version: z.literal(1),
    plugins: z.record(z.string(), z.unknown()),
  })
  .strict();

/** A parsed document that can say where any JSON pointer sits in its text. */
export class ParsedDocument {
  private parsedTree: Node | undefined;
  constructor(
    readonly doc: DesiredDocument,
    private readonly text: string,
    tree: Node | undefined,
    readonly file: string | undefined,
  ) {
    this.parsedTree = tree;
  }

  /** The parse tree, built when a location is first asked for (strict JSON was read without one). */
  private get tree(): Node {
    this.parsedTree ??= parseTree(this.text, [], { allowTrailingComma: true, disallowComments: false });
    return this.parsedTree as Node;
  }

  /** Line and column (1-based) of the value at a JSON pointer, or of its nearest existing ancestor. */
  locate(pointer: string): { line: number; column: number } {
    const segments = pointerSegments(pointer);
    for (let n = segments.length; n >= 0; n--) {
      const node = findNodeAtLocation(
        this.tree,
        segments.slice(0, n).map((s) => (/^\d+$/.test(s) ? Number(s) : s)),
      );
      if (node !== undefined) {
        // for a property's value, point at its key: that is where a reader looks
        const at = node.parent?.type === 'property' ? node.parent.offset : node.offset;
        return lineColumn(this.text, at);
      }
    }
    return { line: 1, column: 1 };
  }

  /** An error location for a JSON pointer in this document. */
  where(pointer: string, plugin?: string): ErrorWhere {
    const w: ErrorWhere = { pointer, ...this.locate(pointer) };
    if (this.file !== undefined) w.file = this.file;
    if (plugin !== undefined) w.plugin = plugin;
    return w;
  }
}

/**
 * The deepest nesting of objects and arrays a document may have. The parser and everything after it
 * (schema validation, canonical JSON) recurse once per level; real documents nest about ten deep.
 */
export const MAX_NESTING = 64;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Parses JSON with comments and checks the top level; errors name file, line, column and pointer. Refused
 * besides what JSON itself refuses: nesting deeper than MAX_NESTING, a key given twice in one object (JSON
 * would silently keep the last: a second "plugins" would drop the first block), and a string with a lone
 * surrogate (`"\ud800"`: no UTF-8 text and no canonical JSON can hold it, so it could never be hashed).
 * A leading byte order mark is accepted.
 */
export function parseDesiredDocument(text: string, file?: string): ParsedDocument {
  const errorAt = (offset: number, message: string, pointer?: string): OpError =>
    new OpError('ParseError', message, {
      ...(file !== undefined ? { file } : {}),
      ...lineColumn(text, offset),
      ...(pointer !== undefined ? { pointer } : {}),
    });
  // A byte order mark is accepted; a space in its place keeps every offset, line and column as they are.
  if (text.startsWith('\uFEFF')) text = ` ${text.slice(1)}`;
  const tooDeep = nestingBeyond(text, MAX_NESTING);
  if (tooDeep !== undefined) {
    throw errorAt(tooDeep, `nested deeper than ${MAX_NESTING} levels of objects and arrays`);
  }
  const surrogates = /[\uD800-\uDFFF]|\\u[dD][89a-fA-F]/.test(text);
  // strict JSON without a repeated key or a surrogate (what a program writes): the engine's own parse;
  // anything else (comments, trailing commas, errors to name) goes through the parse tree below
  const strict = surrogates ? undefined : strictJsonValue(text);
  let value: unknown;
  let tree: Node | undefined;
  if (strict !== undefined) value = strict.value;
  else {
    const errors: ParseError[] = [];
    tree = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
    const first = errors[0];
    if (first !== undefined || tree === undefined) {
      const what = first !== undefined ? describeParseError(first) : 'empty document';
      throw errorAt(first?.offset ?? 0, `not valid JSON: ${what}`);
    }
    value = nodeValue(
      tree,
      (problem) => {
        if (problem.kind === 'duplicate') {
          const here = (offset: number): string => {
            const at = lineColumn(text, offset);
            return `${file ?? 'line'}${file !== undefined ? ':' : ' '}${at.line}:${at.column}`;
          };
          return errorAt(
            problem.again,
            `duplicate key ${JSON.stringify(problem.key)}: first at ${here(problem.first)}, again at ${here(problem.again)}`,
            problem.pointer,
          );
        }
        return errorAt(
          problem.offset,
          'a string holds a lone surrogate (an unpaired \\uD800-\\uDFFF escape): no UTF-8 text can hold it',
          problem.pointer,
        );
      },
      surrogates,
    );
  }
  const top = TopLevel.safeParse(value);
  const parsedPlaceholder = new ParsedDocument({ version: 1, plugins: {} }, text, tree, file);
  if (!top.success) {
    const issue = top.error.issues[0];
    const pointer = issue === undefined ? '' : issuePointer('', issue);
    throw new OpError('SchemaError', issue?.message ?? 'invalid document', parsedPlaceholder.where(pointer));
  }
  // the raw object, not zod's copy: zod drops a "__proto__" key, which must reach validation as an unknown plugin
  const plugins = (value as { plugins: Record<string, unknown> }).plugins;
  return new ParsedDocument({ version: 1, plugins }, text, tree, file);
}

/** The JSON pointer a zod issue refers to, under a base pointer. */
export function issuePointer(base: string, issue: z.core.$ZodIssue): string {
  const path = issue.path.map((p) => String(p));
  if (issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined) path.push(issue.keys[0]);
  return base + path.map((p) => '/' + escapePointer(p)).join('');
}

/** RFC 6901 escaping of one pointer segment. */
export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function describeParseError(e: ParseError): string {
  const names: Record<string, string> = {
    InvalidSymbol: 'unexpected character',
    InvalidNumberFormat: 'invalid number',
    PropertyNameExpected: 'property name expected',
    ValueExpected: 'value expected',
    ColonExpected: 'colon expected',
    CommaExpected: 'comma expected',
    CloseBraceExpected: 'closing brace expected',
    CloseBracketExpected: 'closing bracket expected',
    EndOfFileExpected: 'end of file expected',
    InvalidCommentToken: 'invalid comment',
    UnexpectedEndOfComment: 'unterminated comment',
    UnexpectedEndOfString: 'unterminated string',
    UnexpectedEndOfNumber: 'unterminated number',
    InvalidUnicode: 'invalid unicode escape',
    InvalidEscapeCharacter: 'invalid escape character',
    InvalidCharacter: 'invalid character',
  };
  const code = printParseErrorCode(e.error);
  return names[code] ?? code;
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** What nodeValue refuses: a key given twice in one object, or a string with a lone surrogate. */
type Problem =
  | { kind: 'duplicate'; key: string; first: number; again: number; pointer: string }
  | { kind: 'lone-surrogate'; offset: number; pointer: string };

/**
 * JSON.parse's value when text is strict JSON with no key given twice in one object; undefined
 * otherwise (the parse tree then decides, and names the problem). JSON.parse keeps `__proto__` as
 * an own data property, as nodeValue does. One pass over the text, no recursion.
 */
function strictJsonValue(text: string): { value: unknown } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  // the text is valid JSON: every string is closed, every `,` and bracket is outside strings
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const start = i + 1;
      let escaped = false;
      for (i++; text.charCodeAt(i) !== 0x22; i++) {
        if (text.charCodeAt(i) === 0x5c) {
          escaped = true;
          i++;
        }
      }
      const keys = stack[stack.length - 1];
      if (expectKey && keys !== undefined && keys !== null) {
        const raw = text.slice(start, i);
        const key = escaped ? (JSON.parse(`"${raw}"`) as string) : raw;
        if (keys.has(key)) return undefined;
        keys.add(key);
        expectKey = false;
      }
    } else if (c === 0x7b) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b) {
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = (stack[stack.length - 1] ?? null) !== null;
    }
  }
  return { value };
}

/** The JSON pointer of a parse-tree node (built only for an error: the tree keeps parent links). */
function pointerOf(node: Node): string {
  return getNodePath(node)
    .map((seg) => `/${escapePointer(String(seg))}`)
    .join('');
}

/**
 * The value of a parse-tree node; unlike jsonc-parser's getNodeValue it keeps `__proto__` as plain data,
 * and it refuses what `refuse` is told (the tree is at most MAX_NESTING deep, so recursion is bounded).
 * `surrogates` false: the text holds no surrogate at all (nor a \uD800-\uDFFF escape), so no string
 * needs the test. Pointers are built only for a refusal (a 10,000-flow document has 200,000 nodes).
 */
function nodeValue(node: Node, refuse: (p: Problem) => OpError, surrogates: boolean): unknown {
  switch (node.type) {
    case 'object': {
      const obj: Record<string, unknown> = {};
      const props = node.children ?? [];
      for (let i = 0; i < props.length; i++) {
        const [k, v] = props[i]?.children ?? [];
        if (k === undefined || v === undefined) continue;
        const key = String(k.value);
        if (surrogates && LONE_SURROGATE.test(key))
          throw refuse({ kind: 'lone-surrogate', offset: k.offset, pointer: pointerOf(node) });
        if (Object.hasOwn(obj, key)) {
          const first = props.slice(0, i).find((q) => String(q.children?.[0]?.value) === key);
          throw refuse({
            kind: 'duplicate',
            key,
            first: first?.children?.[0]?.offset ?? k.offset,
            again: k.offset,
            pointer: pointerOf(v),
          });
        }
        const value = nodeValue(v, refuse, surrogates);
        // defineProperty for __proto__: it stays data and never sets the object's prototype
        if (key === '__proto__')
          Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
        else obj[key] = value;
      }
      return obj;
    }
    case 'array': {
      const items = node.children ?? [];
      const out = new Array<unknown>(items.length);
      for (let i = 0; i < items.length; i++) out[i] = nodeValue(items[i] as Node, refuse, surrogates);
      return out;
    }
    case 'string':
      if (surrogates && LONE_SURROGATE.test(node.value as string)) {
        throw refuse({ kind: 'lone-surrogate', offset: node.offset, pointer: pointerOf(node) });
      }
      return node.value as unknown;
    default:
      return node.value as unknown;
  }
}

/**
 * The offset of the first `{` or `[` nested deeper than `limit`, or undefined: one pass over the text that
 * skips strings and comments as jsonc-parser's scanner does (a string or a line comment also ends at a line
 * break), with no recursion; measured ~10x faster than that scanner. Malformed text is the parser's to name.
 */
function nestingBeyond(text: string, limit: number): number | undefined {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // a string: up to the next quote that no backslash escapes, or the end of the line
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22 || d === 0x0a || d === 0x0d) break;
      }
    } else if (c === 0x2f && text.charCodeAt(i + 1) === 0x2f) {
      while (i < text.length && text.charCodeAt(i) !== 0x0a && text.charCodeAt(i) !== 0x0d) i++;
    } else if (c === 0x2f && text.charCodeAt(i + 1) === 0x2a) {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 1;
    } else if (c === 0x7b || c === 0x5b) {
      depth += 1;
      if (depth > limit) return i;
    } else if (c === 0x7d || c === 0x5d) {
      depth -= 1;
    }
  }
  return undefined;
}
