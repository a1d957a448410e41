import { extname, join, normalize, sep } from 'node:path';
import { isConsoleUrl } from './app-origin.js';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ttf': 'font/ttf',
  '.woff2': 'font/woff2',
};

/**
 * Maps an app://console/ request to a file of the renderer build and its content type, or
 * undefined when the URL is not the console's or would leave the build directory.
 */
export function resolveAppFile(
  url: string,
  rendererDir: string,
): { file: string; contentType: string } | undefined {
  if (!isConsoleUrl(url)) return undefined;
  let path: string;
  try {
    path = decodeURIComponent(new URL(url).pathname);
  } catch {
    return undefined;
  }
  if (path.includes('\0') || path.includes('\\')) return undefined;
  const relative = path === '/' || path === '' ? 'index.html' : path.replace(/^\//, '');
  if (relative.split('/').some((s) => s === '..' || s.startsWith('.'))) return undefined;
  const file = normalize(join(rendererDir, relative));
  if (!file.startsWith(normalize(rendererDir) + sep)) return undefined;
  const contentType = CONTENT_TYPES[extname(file).toLowerCase()];
  return contentType === undefined ? undefined : { file, contentType };
}
