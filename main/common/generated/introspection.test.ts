import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isStandardInterface, parseIntrospection } from './introspection.js';

// Every file of the shared corpus of real introspection XML: the well-formed ones give the counts
// INDEX.md states (non-standard interfaces, standard ones, methods, properties, signals); the two
// malformed polkit files are refused with their file, line and column.
const ROOT = resolve(import.meta.dirname, '../../../../shared/fixtures/dbus-introspection');
const rows = readFileSync(join(ROOT, 'INDEX.md'), 'utf8')
  .split('\n')
  .map((line) =>
    /^\| `([^`]+\.xml)` \| (\d+):[^|]*\| (\d+) \| (\d+) \| (\d+) \| (\d+) \|[^|]*\|([^|]*)\|/.exec(line),
  )
  .filter((m): m is RegExpExecArray => m !== null)
  .map((m) => ({
    file: m[1] as string,
    counts: m.slice(2, 7).map(Number),
    malformed: /not well-formed/.test(m[7] ?? ''),
  }));

describe('introspection XML of the fixture corpus', () => {
  it('INDEX.md lists 203 files', () => expect(rows).toHaveLength(203));

  it('loads every well-formed file with the counts of INDEX.md', () => {
    const mismatches: string[] = [];
    for (const row of rows.filter((r) => !r.malformed)) {
      const r = parseIntrospection(readFileSync(join(ROOT, row.file), 'utf8'), { file: row.file });
      if (!r.ok) {
        mismatches.push(`${row.file}: ${r.error.message}`);
        continue;
      }
      const all = r.value.objects.flatMap((o) => o.interfaces);
      const own = all.filter((i) => !isStandardInterface(i.name));
      const sum = (f: (i: (typeof own)[number]) => number): number => own.reduce((n, i) => n + f(i), 0);
      const got = [
        own.length,
        all.length - own.length,
        sum((i) => i.methods.length),
        sum((i) => i.properties.length),
        sum((i) => i.signals.length),
      ];
      if (got.join() !== row.counts.join())
        mismatches.push(`${row.file}: ${got.join()} != ${row.counts.join()}`);
    }
    expect(mismatches).toEqual([]);
  });

  it('refuses the malformed polkit files, naming file, line and column', () => {
    const malformed = rows.filter((r) => r.malformed);
    expect(malformed.map((r) => r.file).sort()).toEqual([
      'polkit/org.freedesktop.PolicyKit1.AuthenticationAgent.xml',
      'polkit/org.freedesktop.PolicyKit1.Authority.xml',
    ]);
    for (const row of malformed) {
      const r = parseIntrospection(readFileSync(join(ROOT, row.file), 'utf8'), { file: row.file });
      expect(r.ok).toBe(false);
      if (r.ok) continue;
      expect(r.error.line).toBeGreaterThan(1);
      expect(r.error.column).toBeGreaterThan(0);
      expect(r.error.message).toMatch(
        new RegExp(`^${row.file.replace(/\./g, '\\.')}:\\d+:\\d+: not well-formed XML`),
      );
    }
  });
});
