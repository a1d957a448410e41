import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { consolePolicy } from '../../common/contract/index.js';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.ttf': 'font/ttf',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

/** The content type for a file served from the renderer build, or undefined when we never serve that kind. */
export function contentTypeOf(file: string): string | undefined {
  return CONTENT_TYPES[extname(file).toLowerCase()];
}

/**
 * Maps a request path to a file under root, or undefined when it would leave root (`..`, encoded
 * slashes, NUL) or names a hidden file. `/` is the console's index.html.
 */
export function resolveStaticPath(root: string, urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0') || decoded.includes('\\') || !decoded.startsWith('/')) return undefined;
  const relative = decoded === '/' ? 'index.html' : decoded.slice(1);
  if (relative.split('/').some((segment) => segment === '..' || segment.startsWith('.'))) return undefined;
  const file = normalize(join(root, relative));
  if (!file.startsWith(normalize(root) + sep)) return undefined;
  return file;
}

/**
 * The bytes of a file resolveStaticPath named, or undefined when it is not a regular file whose real path
 * (every symlink resolved) lies under root's: a link in the build must not serve /etc/shadow. O_NOFOLLOW
 * refuses a last component swapped for a link after the check.
 */
export async function readStaticFile(root: string, file: string): Promise<Buffer | undefined> {
  let real: string;
  let realRoot: string;
  try {
    [real, realRoot] = await Promise.all([realpath(file), realpath(root)]);
  } catch {
    return undefined;
  }
  if (!real.startsWith(realRoot + sep)) return undefined;
  let handle;
  try {
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    return (await handle.stat()).isFile() ? await handle.readFile() : undefined;
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}

/** The Content-Security-Policy of the served console (consolePolicy): a WebSocket back to this server. */
export function consoleCsp(port: number): string {
  return consolePolicy(`'self' ws://127.0.0.1:${port} ws://localhost:${port}`);
}

/** Headers on every response: the CSP and the usual hardening for a page that holds a privileged session. */
export function securityHeaders(port: number): Record<string, string> {
  return {
    'Content-Security-Policy': consoleCsp(port),
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Cache-Control': 'no-store',
  };
}
