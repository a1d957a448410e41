import { describe, expect, it } from 'vitest';
import { OpError } from '../../common/contract/index.js';
import { MAX_NESTING, parseDesiredDocument } from './document.js';
import { contentHash } from '../../common/canonical/jcs.js';

function error(text: string, file = 'host.jsonc'): OpError {
  try {
    parseDesiredDocument(text, file);
  } catch (e) {
    if (e instanceof OpError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

describe('parseDesiredDocument', () => {
  it('accepts comments and trailing commas', () => {
    const p = parseDesiredDocument('// c\n{ "version": 1, /* x */ "plugins": { "hostname": {}, }, }');
    expect(p.doc).toEqual({ version: 1, plugins: { hostname: {} } });
  });

  it('names line and column of a syntax error', () => {
    const e = error('{\n  "version": 1,\n  "plugins": {,}\n}');
    expect(e.code).toBe('ParseError');
    expect(e.where).toMatchObject({ file: 'host.jsonc', line: 3, column: 15 });
  });

  it('refuses an empty document and an unterminated string with a position', () => {
    expect(error('').code).toBe('ParseError');
    const e = error('{"version": 1, "plugins": {"a": "b}}');
    expect(e.message).toMatch(/unterminated string/);
    expect(e.where?.line).toBe(1);
  });

  it('names the pointer and position of a top-level schema error', () => {
    const e = error('{\n  "version": 1,\n  "plugins": [],\n}');
    expect(e.code).toBe('SchemaError');
    expect(e.where).toMatchObject({ pointer: '/plugins', line: 3, column: 3 });
    expect(error('{"version":1,"plugins":{},"extra":true}').where?.pointer).toBe('/extra');
  });

  it('locates escaped pointers and array indices', () => {
    const p = parseDesiredDocument('{"version":1,"plugins":{"a/b":{"list":[1,\n  2]}}}');
    expect(p.locate('/plugins/a~1b/list/1')).toEqual({ line: 2, column: 3 });
    // a pointer that does not exist resolves to its nearest existing ancestor
    expect(p.locate('/plugins/a~1b/missing')).toEqual(p.locate('/plugins/a~1b'));
  });

  it('keeps a "__proto__" key as data, never as a prototype', () => {
    const p = parseDesiredDocument('{"version":1,"plugins":{"__proto__":{"polluted":true}}}');
    expect(Object.keys(p.doc.plugins)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.getPrototypeOf(p.doc.plugins)).toBe(Object.prototype);
  });
});

describe('parseDesiredDocument: what JSON alone would let through', () => {
  it('refuses nesting deeper than MAX_NESTING with the position of the first level too deep, never Internal', () => {
    const deep = (n: number): string =>
      `{"version":1,"plugins":{"hostname":${'['.repeat(n)}${']'.repeat(n)}}}`;
    // two levels before the brackets: the document and plugins
    expect(() => parseDesiredDocument(deep(MAX_NESTING - 2))).not.toThrow();
    for (const n of [MAX_NESTING - 1, 100_000]) {
      const e = error(deep(n));
      expect(e.code).toBe('ParseError');
      expect(e.message).toMatch(`nested deeper than ${MAX_NESTING} levels`);
      expect(e.where).toMatchObject({ file: 'host.jsonc', line: 1, column: 34 + MAX_NESTING });
    }
  });

  it('refuses a lone surrogate in a value or a key with its position and pointer', () => {
    const value = error('{"version":1,\n "plugins":{"hostname":{"location":"a\\ud800b"}}}');
    expect(value.code).toBe('ParseError');
    expect(value.message).toMatch(/lone surrogate/);
    expect(value.where).toMatchObject({ line: 2, column: 36, pointer: '/plugins/hostname/location' });
    const key = error('{"version":1,"plugins":{"hostname":{"\\udc00":1}}}');
    expect(key.where).toMatchObject({ line: 1, column: 37, pointer: '/plugins/hostname' });
    // a pair written as two escapes is one character, and fine
    expect(parseDesiredDocument('{"version":1,"plugins":{"x":"\\ud83d\\ude00"}}').doc.plugins['x']).toBe(
      '😀',
    );
  });

  it('refuses a key given twice, naming both places (a second "plugins" would drop the first block)', () => {
    const e = error('{\n  "version": 1,\n  "plugins": { "hostname": {} },\n  "plugins": {}\n}');
    expect(e.code).toBe('ParseError');
    expect(e.message).toBe('duplicate key "plugins": first at host.jsonc:3:3, again at host.jsonc:4:3');
    expect(e.where).toMatchObject({ file: 'host.jsonc', line: 4, column: 3, pointer: '/plugins' });
    const nested = error('{"version":1,"plugins":{"hostname":{"location":"a",\n"location":"b"}}}');
    expect(nested.message).toMatch(/first at host\.jsonc:1:37, again at host\.jsonc:2:1/);
    expect(nested.where?.pointer).toBe('/plugins/hostname/location');
    expect(() => parseDesiredDocument('{"version":1,"plugins":{"a":{"x":1},"b":{"x":1}}}')).not.toThrow();
  });

  it('accepts a byte order mark, and positions after it are unchanged', () => {
    expect(parseDesiredDocument('\uFEFF{"version":1,"plugins":{}}').doc).toEqual({ version: 1, plugins: {} });
    expect(error('\uFEFF{"version":1,\n"plugins":[]}').where).toMatchObject({ line: 2, column: 1 });
  });
});

describe('contentHash (RFC 8785)', () => {
  it('does not depend on key order or number spelling', () => {
    expect(contentHash({ b: 1, a: [1e2, 'x'] })).toBe(contentHash({ a: [100, 'x'], b: 1.0 }));
    expect(contentHash({ a: 1 })).not.toBe(contentHash({ a: 2 }));
  });

  it('matches the SHA-256 of the RFC 8785 example canonical form', async () => {
    const { createHash } = await import('node:crypto');
    const canonical =
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}';
    const input = {
      numbers: [333333333.33333329, 1e30, 4.5, 2e-3, 0.000000000000000000000000001],
      string: '\u20ac$\u000F\u000aA\'\u0042\u0022\u005c\\"/',
      literals: [null, true, false],
    };
    expect(contentHash(input)).toBe(createHash('sha256').update(canonical).digest('hex'));
  });
});
