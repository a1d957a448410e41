import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { awkwardText, fuzz, mutated } from '../../../test/support/fuzz.js';
import { generatePlugin } from './generate.js';
import { parseIntrospection } from './introspection.js';
import { parseMapping } from './mapping.js';
import { parseSignature } from './signature.js';

// Introspection XML (from a file or any service on the bus) and semantic-mapping.toml (from a
// plugin directory) are untrusted: whatever they are, the loaders answer with a value, a plugin or
// an error naming the file, never a throw that escapes, never a hang (fixed seeds, a time limit each).
const ROOT = resolve(import.meta.dirname, '../../..');
const FIXTURES = resolve(ROOT, '../shared/fixtures/dbus-introspection/systemd');
const realXml = [
  'org.freedesktop.timedate1.xml',
  'org.freedesktop.locale1.xml',
  'org.freedesktop.login1.Seat.xml',
].map((f) => readFileSync(join(FIXTURES, f), 'utf8'));
const realMappings = ['timedate1', 'locale1', 'hostname1'].map((n) =>
  readFileSync(join(ROOT, 'plugins/generated', n, 'semantic-mapping.toml'), 'utf8'),
);

const sig = fc.string({
  unit: fc.constantFrom('a', '{', '}', '(', ')', 's', 'v', 'y', 'x', 't', 'b', 'u', 'o', 'g', 'h', 'd', 'z'),
  maxLength: 40,
});
const element = fc.letrec<{ node: string }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small' },
    fc
      .tuple(
        fc.constantFrom('property', 'method', 'signal', 'arg', 'annotation', 'interface', 'node', 'x'),
        fc.constantFrom('name', 'type', 'access', 'direction', 'value'),
        fc.oneof(
          awkwardText,
          sig,
          fc.constantFrom('org.a.B', 'read', 'readwrite', 'in', 'out', '/a/b', 'Prop'),
        ),
      )
      .map(([tag, attr, value]) => `<${tag} ${attr}="${value}"/>`),
    fc
      .tuple(
        fc.constantFrom('node', 'interface', 'method', 'property'),
        fc.array(tie('node'), { maxLength: 4 }),
        fc.constantFrom('org.freedesktop.x1', 'Set', 'a b', ''),
      )
      .map(([tag, kids, name]) => `<${tag} name="${name}" type="s" access="read">${kids.join('')}</${tag}>`),
  ),
})).node;
const xmlInputs = fc.oneof(
  awkwardText,
  element.map((e) => `<node>${e}</node>`),
  mutated(fc.constantFrom(...realXml)),
  fc.nat(3000).map((n) => `${'<node name="a">'.repeat(n)}${'</node>'.repeat(n)}`),
  fc.constantFrom(
    '<!DOCTYPE node [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><node name="&b;"/>',
    '<node><interface name="__proto__"/></node>',
    '<node name="/"><node name="constructor"/></node>',
  ),
);
const tomlInputs = fc.oneof(
  awkwardText,
  mutated(fc.constantFrom(...realMappings)),
  fc
    .tuple(
      fc.constantFrom(...realMappings),
      fc.constantFrom(
        '[safety]\npre_apply_hook = "rm -rf /"\n',
        '[methods.__proto__]\nsafe = true\n',
        '[state_mapping.x]\nquery_method = "Timezone"\napply_method = "set_time"\n',
        'x = 1979-05-27T07:32:00Z\n',
        'a = [[[[[[[[[[[[1]]]]]]]]]]]]\n',
      ),
    )
    .map(([t, extra]) => t + '\n' + extra),
  fc
    .dictionary(fc.constantFrom('service', 'methods', 'state_mapping', 'safety', 'x'), fc.jsonValue(), {
      maxKeys: 4,
    })
    .map((o) =>
      Object.entries(o)
        .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
        .join('\n'),
    ),
);

describe("the generator's loaders under fuzzing", () => {
  it('introspection XML: a model or an error value naming the file, never a throw', () => {
    fuzz(
      'introspection XML',
      xmlInputs,
      (text) => {
        const r = parseIntrospection(text, { file: 'f.xml' });
        if (!r.ok) expect(r.error.message).toMatch(/^f\.xml/);
        else expect(Array.isArray(r.value.objects)).toBe(true);
      },
      { seed: 1717, runs: 1500, perInputMs: 500 },
    );
  });

  it('semantic-mapping.toml: a mapping or an error value with line and column (TOML) or a pointer, never a throw', () => {
    fuzz(
      'semantic mapping TOML',
      tomlInputs,
      (text) => {
        const r = parseMapping(text, 'm.toml');
        if (!r.ok) {
          expect(r.error.message).toMatch(/^m\.toml/);
          expect(
            r.error.line !== undefined || r.error.pointer !== undefined || /not text/.test(r.error.message),
          ).toBe(true);
        }
      },
      { seed: 2024, runs: 1500, perInputMs: 500 },
    );
  });

  it('XML and mapping together: a plugin or an error value, never a throw', () => {
    fuzz(
      'generate (XML + mapping)',
      fc.tuple(fc.oneof(fc.constantFrom(...realXml), xmlInputs), fc.option(tomlInputs)),
      ([xml, toml]) => {
        const r = generatePlugin({
          xml,
          file: 'f.xml',
          ...(toml !== null ? { mapping: { text: toml, file: 'm.toml' } } : {}),
        });
        if (r.ok) expect(typeof r.plugin.manifest).toBe('string');
        else expect(typeof r.error.message).toBe('string');
      },
      { seed: 99, runs: 800, perInputMs: 1000 },
    );
  });

  it('D-Bus signatures: parsed or refused with a reason', () => {
    fuzz(
      'D-Bus signature',
      fc.oneof(
        sig,
        fc.nat(300).map((n) => 'a'.repeat(n) + 's'),
        fc.nat(300).map((n) => '('.repeat(n) + 's' + ')'.repeat(n)),
      ),
      (s) => {
        const r = parseSignature(s);
        expect(typeof r.ok).toBe('boolean');
      },
      { seed: 7, runs: 2000, perInputMs: 200 },
    );
  });
});
