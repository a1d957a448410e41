import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { parseSingleType, parseSignature } from './signature.js';

// D-Bus introspection XML (the specification's "Introspection Data Format") read into plain data.
// The text is untrusted: every outcome is a value (the model, or an error naming the file and,
// for XML that is not well-formed, its line and column), never an exception.

export interface DbusArg {
  name?: string;
  type: string;
}
export interface DbusMethod {
  name: string;
  in: DbusArg[];
  out: DbusArg[];
}
export interface DbusProperty {
  name: string;
  type: string;
  access: 'read' | 'write' | 'readwrite';
}
export interface DbusSignal {
  name: string;
  args: DbusArg[];
}
export interface DbusInterface {
  name: string;
  methods: DbusMethod[];
  properties: DbusProperty[];
  signals: DbusSignal[];
}
/** One object of the XML: its path (absolute when the XML or the caller gives it) and its interfaces. */
export interface DbusObject {
  path: string;
  interfaces: DbusInterface[];
}
export interface Introspection {
  /** Objects with at least one interface, the root first. */
  objects: DbusObject[];
  /** Child nodes named without interfaces (what a caller would introspect next). */
  children: string[];
}

export interface IntrospectionError {
  file: string;
  message: string;
  line?: number;
  column?: number;
}

export type IntrospectionResult =
  { ok: true; value: Introspection } | { ok: false; error: IntrospectionError };

/** The interfaces every object has (Peer, Introspectable, Properties, ObjectManager): counted apart. */
export const isStandardInterface = (name: string): boolean => name.startsWith('org.freedesktop.DBus.');

const MAX_BYTES = 4 * 1024 * 1024;
const MAX_DEPTH = 64;
const INTERFACE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$/;
const MEMBER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Real services name properties with "-" too (GDBus allows it: fprintd's num-enroll-stages). */
const PROPERTY = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const PATH = /^\/$|^(\/[A-Za-z0-9_]+)+$/;
const NODE_NAME = /^[A-Za-z0-9_]+(\/[A-Za-z0-9_]+)*$/;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  attributesGroupName: '@',
  // names are never entities: an entity the file declares is never expanded (no "billion laughs")
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  isArray: (name) =>
    ['node', 'interface', 'method', 'property', 'signal', 'arg', 'annotation'].includes(name),
});

type XmlElement = Record<string, unknown>;

class Invalid extends Error {}

/**
 * Reads introspection XML. `path` is where the root object lives when the XML's root node has no
 * absolute name (an Introspect reply never names it; a file may).
 */
export function parseIntrospection(text: string, o: { file: string; path?: string }): IntrospectionResult {
  const fail = (message: string, line?: number, column?: number): IntrospectionResult => ({
    ok: false,
    error: {
      file: o.file,
      message: `${o.file}${line !== undefined ? `:${line}:${column ?? 1}` : ''}: ${message}`,
      ...(line !== undefined ? { line, column: column ?? 1 } : {}),
    },
  });
  if (typeof text !== 'string') return fail('not text');
  if (Buffer.byteLength(text) > MAX_BYTES) return fail(`larger than ${MAX_BYTES} bytes`);
  let valid: ReturnType<typeof XMLValidator.validate>;
  try {
    valid = XMLValidator.validate(text, { allowBooleanAttributes: false });
  } catch (e) {
    return fail(`not well-formed XML: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (valid !== true) return fail(`not well-formed XML: ${valid.err.msg}`, valid.err.line, valid.err.col);
  const lt = lessThanInAttribute(text);
  if (lt !== undefined) return fail(`not well-formed XML: "<" inside an attribute value`, lt.line, lt.column);
  let doc: unknown;
  try {
    doc = parser.parse(text);
  } catch (e) {
    return fail(`not well-formed XML: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    const roots = elements(doc as XmlElement, 'node');
    const other = Object.keys(doc as XmlElement).filter(
      (k) => k !== 'node' && k !== '#text' && !k.startsWith('?') && k !== '!DOCTYPE',
    );
    if (roots.length !== 1 || other.length > 0)
      throw new Invalid('the document must have exactly one root element <node>');
    const root = roots[0] as XmlElement;
    const rootName = attr(root, 'name');
    let rootPath = o.path ?? '/';
    if (rootName !== undefined && rootName.startsWith('/')) rootPath = rootName;
    if (!PATH.test(rootPath)) throw new Invalid(`${JSON.stringify(rootPath)} is not an object path`);
    const value: Introspection = { objects: [], children: [] };
    walk(root, rootPath, 0, value);
    return { ok: true, value };
  } catch (e) {
    if (e instanceof Invalid) return fail(e.message);
    return fail(`unreadable introspection data: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function walk(node: XmlElement, path: string, depth: number, out: Introspection): void {
  if (depth > MAX_DEPTH) throw new Invalid(`nodes nested deeper than ${MAX_DEPTH}`);
  const interfaces = elements(node, 'interface').map((i) => readInterface(i, path));
  const seen = new Set<string>();
  for (const i of interfaces) {
    if (seen.has(i.name)) throw new Invalid(`${path}: interface ${i.name} appears twice`);
    seen.add(i.name);
  }
  if (interfaces.length > 0) out.objects.push({ path, interfaces });
  for (const child of elements(node, 'node')) {
    const name = attr(child, 'name');
    if (name === undefined) throw new Invalid(`${path}: a child <node> without a name`);
    if (!NODE_NAME.test(name))
      throw new Invalid(`${path}: child node name ${JSON.stringify(name)} is not a relative object path`);
    const childPath = path === '/' ? `/${name}` : `${path}/${name}`;
    if (elements(child, 'interface').length === 0 && elements(child, 'node').length === 0)
      out.children.push(childPath);
    else walk(child, childPath, depth + 1, out);
  }
}

function readInterface(el: XmlElement, path: string): DbusInterface {
  const name = attr(el, 'name');
  if (name === undefined || !INTERFACE.test(name) || name.length > 255)
    throw new Invalid(`${path}: interface name ${JSON.stringify(name ?? '')} is not a D-Bus interface name`);
  const where = `${path} ${name}`;
  const member = (kind: string, e: XmlElement): string => {
    const n = attr(e, 'name');
    if (n === undefined || !(kind === 'property' ? PROPERTY : MEMBER).test(n) || n.length > 255)
      throw new Invalid(`${where}: ${kind} name ${JSON.stringify(n ?? '')} is not a D-Bus member name`);
    return n;
  };
  const args = (
    owner: string,
    e: XmlElement,
    defaultDirection: 'in' | 'out',
  ): (DbusArg & { direction: string })[] =>
    elements(e, 'arg').map((a) => {
      const type = attr(a, 'type');
      if (type === undefined) throw new Invalid(`${where}: ${owner}: an <arg> without a type`);
      const parsed = parseSingleType(type);
      if (!parsed.ok)
        throw new Invalid(`${where}: ${owner}: argument type ${JSON.stringify(type)}: ${parsed.reason}`);
      const direction = attr(a, 'direction') ?? defaultDirection;
      if (direction !== 'in' && direction !== 'out')
        throw new Invalid(
          `${where}: ${owner}: argument direction ${JSON.stringify(direction)} is neither in nor out`,
        );
      const argName = attr(a, 'name');
      return { ...(argName !== undefined ? { name: argName } : {}), type, direction };
    });
  const strip = ({ direction: _d, ...a }: DbusArg & { direction: string }): DbusArg => a;
  const methods = elements(el, 'method').map((m) => {
    const n = member('method', m);
    const all = args(`method ${n}`, m, 'in');
    return {
      name: n,
      in: all.filter((a) => a.direction === 'in').map(strip),
      out: all.filter((a) => a.direction === 'out').map(strip),
    };
  });
  const properties = elements(el, 'property').map((p): DbusProperty => {
    const n = member('property', p);
    const type = attr(p, 'type');
    if (type === undefined) throw new Invalid(`${where}: property ${n} has no type`);
    const parsed = parseSingleType(type);
    if (!parsed.ok)
      throw new Invalid(`${where}: property ${n}: type ${JSON.stringify(type)}: ${parsed.reason}`);
    const access = attr(p, 'access');
    if (access !== 'read' && access !== 'write' && access !== 'readwrite')
      throw new Invalid(
        `${where}: property ${n}: access ${JSON.stringify(access ?? '')} is not read, write or readwrite`,
      );
    return { name: n, type, access };
  });
  const signals = elements(el, 'signal').map((s) => {
    const n = member('signal', s);
    return { name: n, args: args(`signal ${n}`, s, 'out').map(strip) };
  });
  for (const [kind, list] of [
    ['method', methods],
    ['property', properties],
    ['signal', signals],
  ] as const) {
    const names = new Set<string>();
    for (const m of list) {
      if (names.has(m.name)) throw new Invalid(`${where}: ${kind} ${m.name} appears twice`);
      names.add(m.name);
    }
  }
  return { name, methods, properties, signals };
}

function elements(el: XmlElement, name: string): XmlElement[] {
  if (!Object.hasOwn(el, name)) return [];
  const v = el[name];
  if (!Array.isArray(v)) return [];
  return v.map((x) => (typeof x === 'object' && x !== null ? (x as XmlElement) : {}));
}

function attr(el: XmlElement, name: string): string | undefined {
  const attrs = Object.hasOwn(el, '@') ? el['@'] : undefined;
  if (typeof attrs !== 'object' || attrs === null || !Object.hasOwn(attrs, name)) return undefined;
  const v = (attrs as Record<string, unknown>)[name];
  return typeof v === 'string' ? v : undefined;
}

/** Whether every argument list of a method parses (used by the generator for a method's input signature). */
export function signatureText(args: readonly DbusArg[]): string | undefined {
  const s = args.map((a) => a.type).join('');
  return parseSignature(s).ok ? s : undefined;
}

/**
 * Where a raw "<" stands inside a quoted attribute value (XML 1.0 forbids it; fast-xml-parser's
 * validator lets it pass, as in polkit's upstream files). Comments, CDATA, the DOCTYPE and
 * processing instructions are skipped.
 */
function lessThanInAttribute(text: string): { line: number; column: number } | undefined {
  let i = 0;
  const skipTo = (end: string): void => {
    const at = text.indexOf(end, i);
    i = at < 0 ? text.length : at + end.length;
  };
  while (i < text.length) {
    const open = text.indexOf('<', i);
    if (open < 0) return undefined;
    i = open;
    if (text.startsWith('<!--', i)) skipTo('-->');
    else if (text.startsWith('<![CDATA[', i)) skipTo(']]>');
    else if (text.startsWith('<?', i)) skipTo('?>');
    else if (text.startsWith('<!', i)) skipTo('>');
    else {
      i++;
      let quote: string | undefined;
      for (; i < text.length; i++) {
        const c = text[i];
        if (quote !== undefined) {
          if (c === quote) quote = undefined;
          else if (c === '<') return position(text, i);
        } else if (c === '"' || c === "'") quote = c;
        else if (c === '>') break;
      }
      i++;
    }
  }
  return undefined;
}

function position(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let last = -1;
  for (let j = text.indexOf('\n'); j >= 0 && j < offset; j = text.indexOf('\n', j + 1)) {
    line++;
    last = j;
  }
  return { line, column: offset - last };
}
