import { SESSION_PROTOCOL_PREFIX } from '../../common/contract/index.js';

/** Why a request is refused, for the 403 body and the log; undefined when it may pass. */
export type Refusal = string | undefined;

/** The two names under which a browser reaches a server bound to 127.0.0.1:port. */
export function allowedHosts(port: number): string[] {
  return [`127.0.0.1:${port}`, `localhost:${port}`];
}

/**
 * Checks the Host header of every request. A page on any site can make a browser send requests to
 * 127.0.0.1 through a DNS name it controls (DNS rebinding); such requests carry that name as Host.
 */
export function checkHost(host: string | undefined, port: number): Refusal {
  if (host === undefined) return 'no Host header';
  if (!allowedHosts(port).includes(host.toLowerCase()))
    return `Host ${JSON.stringify(host)} is not this console`;
  return undefined;
}

/**
 * Checks a WebSocket upgrade: browsers do not apply the same-origin policy to WebSockets, so any
 * page could open one to 127.0.0.1; the Origin header must be exactly the origin the console is
 * served from (the one named by Host). Then the session: `sessionRefusal` is why the cookie and the
 * page's secret do not open one (SessionGate.bind), undefined when they do. Origin alone proves
 * nothing to a process that is not a browser: it writes any Origin it likes.
 */
export function checkUpgrade(
  headers: { host?: string | undefined; origin?: string | undefined },
  port: number,
  sessionRefusal: Refusal,
): Refusal {
  const hostRefusal = checkHost(headers.host, port);
  if (hostRefusal !== undefined) return hostRefusal;
  const servedOrigin = `http://${(headers.host ?? '').toLowerCase()}`;
  if (headers.origin === undefined) return 'no Origin header';
  if (headers.origin !== servedOrigin)
    return `Origin ${JSON.stringify(headers.origin)} is not ${servedOrigin}`;
  if (sessionRefusal !== undefined)
    return `no console session (${sessionRefusal}): open the URL that \`op-dbus serve\` printed`;
  return undefined;
}

/** The page secret a console offers among its WebSocket subprotocols (see RELAY_PROTOCOL), or undefined. */
export function offeredSecret(protocols: Set<string>): string | undefined {
  for (const p of protocols) {
    if (p.startsWith(SESSION_PROTOCOL_PREFIX)) return p.slice(SESSION_PROTOCOL_PREFIX.length);
  }
  return undefined;
}
