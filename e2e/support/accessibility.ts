/// <reference lib="dom" />
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');

/** axe-core's violations of WCAG 2 A/AA on the page as it is now, as "rule (impact): target" lines. */
export async function accessibilityViolations(p: Page): Promise<string[]> {
  // evaluated through the DevTools protocol: the console's CSP (script-src 'self') rightly refuses an inline script
  if (!(await p.evaluate(() => 'axe' in window))) await p.evaluate(readFileSync(AXE, 'utf8'));
  return p.evaluate(async () => {
    const axe = (
      window as unknown as {
        axe: {
          run(
            c: unknown,
            o: unknown,
          ): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }>;
        };
      }
    ).axe;
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] } });
    return r.violations.map(
      (v) =>
        `${v.id} (${v.impact}): ${v.nodes
          .map((n) => n.target.join(' '))
          .slice(0, 3)
          .join(', ')}`,
    );
  });
}

/** The violations in each theme (the page's current one, then the other; it is switched back). */
export async function violationsInBothThemes(p: Page): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const round of ['first', 'second']) {
    const theme = (await p.evaluate(() => document.documentElement.dataset['theme'])) ?? round;
    const found = await accessibilityViolations(p);
    if (found.length > 0) out[theme] = found;
    await p.getByTestId('toggle-theme').click();
  }
  return out;
}
