import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// The console's bundle as global-setup built it: Monaco from npm with the JSON service only. (That
// nothing comes from a CDN is the served CSP's to enforce: script-src and worker-src are 'self', and
// the console tests run the editor under it.)
const assets = resolve(import.meta.dirname, '..', 'dist/renderer/assets');
const files = readdirSync(assets);

describe('the console bundle', () => {
  it("carries Monaco's editor and JSON workers and none of the languages the console does not edit", () => {
    expect(files.some((f) => /^editor\.worker-.*\.js$/.test(f))).toBe(true);
    expect(files.some((f) => /^json\.worker-.*\.js$/.test(f))).toBe(true);
    expect(files.filter((f) => /^(ts|css|html)\.worker-/.test(f))).toEqual([]);
    // one lazy chunk per language would be here (~80 of them) if the registrations were kept
    expect(files.filter((f) => f.endsWith('.js')).length).toBeLessThan(10);
    const bytes = files.reduce((sum, f) => sum + statSync(join(assets, f)).size, 0);
    console.log(`console bundle: ${files.length} files, ${(bytes / 2 ** 20).toFixed(1)} MiB`);
  });
});
