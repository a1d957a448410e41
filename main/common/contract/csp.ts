/**
 * The console's Content-Security-Policy wherever it is loaded (the Electron shell's app:// protocol,
 * `op-dbus serve`): its own scripts, workers and fonts, no eval, no frames, no forms. Monaco inserts
 * <style> elements at run time, hence the inline styles. `connectSrc` is the one directive that
 * differs: the shell's console talks to the core through IPC, the served one through a WebSocket.
 */
export function consolePolicy(connectSrc: string): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    `connect-src ${connectSrc}`,
    "worker-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join('; ');
}
