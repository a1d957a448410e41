import { describe, expect, it } from 'vitest';
import { consoleCsp, contentTypeOf, resolveStaticPath } from './static-files.js';

describe('resolveStaticPath', () => {
  const root = '/srv/console';

  it('maps / to index.html and asset paths below root', () => {
    expect(resolveStaticPath(root, '/')).toBe('/srv/console/index.html');
    expect(resolveStaticPath(root, '/assets/index-abc.js')).toBe('/srv/console/assets/index-abc.js');
  });

  it('never leaves root, in plain or encoded form', () => {
    for (const p of [
      '/../etc/passwd',
      '/assets/../../etc/passwd',
      '/%2e%2e/etc/passwd',
      '/assets%2f..%2f..%2fetc',
      '/a\\..\\b',
      '/x%00.js',
      '/.env',
      '/%E0%A4%A',
      'relative',
    ]) {
      expect(resolveStaticPath(root, p), p).toBeUndefined();
    }
  });
});

describe('contentTypeOf', () => {
  it('serves only known kinds', () => {
    expect(contentTypeOf('/a/index.html')).toMatch(/text\/html/);
    expect(contentTypeOf('/a/editor.worker.js')).toMatch(/javascript/);
    expect(contentTypeOf('/a/secret.key')).toBeUndefined();
  });
});

describe('consoleCsp', () => {
  it('allows only self for scripts and workers, no eval, and WebSockets only back to this port', () => {
    const csp = consoleCsp(8080);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-eval');
    expect(csp).toContain("connect-src 'self' ws://127.0.0.1:8080 ws://localhost:8080");
    expect(csp).toContain("frame-ancestors 'none'");
  });
});
