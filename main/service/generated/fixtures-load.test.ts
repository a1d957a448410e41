import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { generatePlugin } from '../../common/generated/generate.js';
import { compileSection } from '../plugins/section-schema.js';
import { generatedPlugin } from './runtime.js';

// Every well-formed file of the fixture corpus becomes a plugin: a name, a manifest the core
// reads, a section schema that ajv (strict, draft 2020-12) compiles, and a runtime plugin object.
const ROOT = resolve(import.meta.dirname, '../../../../shared/fixtures/dbus-introspection');
const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? files(join(dir, d.name)) : d.name.endsWith('.xml') ? [join(dir, d.name)] : [],
  );

describe('generated plugins of the fixture corpus', () => {
  it('203 files: 201 become plugins whose schema compiles, the 2 malformed polkit files are refused', () => {
    const all = files(ROOT);
    expect(all).toHaveLength(203);
    const refused: string[] = [];
    for (const file of all) {
      const r = generatePlugin({ xml: readFileSync(file, 'utf8'), file: relative(ROOT, file) });
      if (!r.ok) {
        refused.push(r.error.message);
        continue;
      }
      expect(r.plugin.name).toMatch(/^[a-z][a-z0-9_]*$/);
      expect(() => compileSection(r.plugin.name, r.plugin.schema)).not.toThrow();
      expect(typeof generatedPlugin(r.plugin.spec).query).toBe('function');
    }
    expect(refused).toHaveLength(2);
    for (const m of refused)
      expect(m).toMatch(
        /^polkit\/org\.freedesktop\.PolicyKit1\.(Authority|AuthenticationAgent)\.xml:\d+:\d+: not well-formed XML/,
      );
  });
});
