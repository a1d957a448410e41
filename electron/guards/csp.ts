/**
 * The Content-Security-Policy of the console in the shell: its own scripts, workers and fonts,
 * no network at all (it talks to the core through IPC), no eval. Monaco inserts <style> elements.
 */
export const SHELL_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'none'",
  "worker-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');
