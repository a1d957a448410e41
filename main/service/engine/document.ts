import { findNodeAtLocation, parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';
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
  constructor(
    readonly doc: DesiredDocument,
    private readonly text: string,
    private readonly tree: Node,
    readonly file: string | undefined,
  ) {}

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

/** Parses JSON with comments and checks the top level; errors name file, line, column and pointer. */
export function parseDesiredDocument(text: string, file?: string): ParsedDocument {
  const errors: ParseError[] = [];
  const tree = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
  const first = errors[0];
  if (first !== undefined || tree === undefined) {
    const at = lineColumn(text, first?.offset ?? 0);
    const what = first !== undefined ? describeParseError(first) : 'empty document';
    throw new OpError('ParseError', `not valid JSON: ${what}`, {
      ...(file !== undefined ? { file } : {}),
      ...at,
    });
  }
  const value: unknown = nodeValue(tree);
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

/** The value of a parse-tree node; unlike jsonc-parser's getNodeValue it keeps `__proto__` as plain data. */
function nodeValue(node: Node): unknown {
  switch (node.type) {
    case 'object': {
      const obj: Record<string, unknown> = {};
      for (const prop of node.children ?? []) {
        const [k, v] = prop.children ?? [];
        if (k === undefined || v === undefined) continue;
        // defineProperty: a key named __proto__ stays data and never sets the object's prototype
        Object.defineProperty(obj, String(k.value), {
          value: nodeValue(v),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return obj;
    }
    case 'array':
      return (node.children ?? []).map(nodeValue);
    default:
      return node.value as unknown;
  }
}
