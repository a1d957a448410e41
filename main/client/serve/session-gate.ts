import { randomBytes, timingSafeEqual } from 'node:crypto';

/** What the gate decides for a request that carries a `token` query parameter. */
export type TokenRedemption =
  { ok: true; sessionId: string; setCookie: string } | { ok: false; reason: string };

const SECRET_BYTES = 32;

/**
 * The one-time URL token and the session cookie it is swapped for.
 *
 * `serve` prints one URL; the first GET with its token receives an HttpOnly SameSite=Strict cookie
 * and the token is spent, so a URL copied from a terminal scrollback or a shell history later is
 * useless. Cookies are not port-scoped, so the cookie name carries the port: two `serve`s on one
 * host never overwrite each other's session.
 */
export class SessionGate {
  private pendingToken: Buffer | undefined;
  private readonly sessions = new Set<string>();
  readonly cookieName: string;

  constructor(
    port: number,
    private readonly random: (bytes: number) => Buffer = randomBytes,
  ) {
    this.cookieName = `opdbus_session_${port}`;
    this.pendingToken = this.random(SECRET_BYTES);
  }

  /** The token to print in the URL; readable until it is redeemed. */
  get token(): string | undefined {
    return this.pendingToken?.toString('hex');
  }

  /** Swaps the token for a session, once; every later or wrong token is refused. */
  redeem(candidate: string): TokenRedemption {
    const pending = this.pendingToken;
    if (pending === undefined)
      return {
        ok: false,
        reason: 'this console link was already used; restart `op-dbus serve` for a new one',
      };
    if (!sameSecret(candidate, pending)) return { ok: false, reason: 'wrong console token' };
    this.pendingToken = undefined;
    const sessionId = this.random(SECRET_BYTES).toString('hex');
    this.sessions.add(sessionId);
    return {
      ok: true,
      sessionId,
      setCookie: `${this.cookieName}=${sessionId}; HttpOnly; SameSite=Strict; Path=/`,
    };
  }

  /** True when the Cookie header carries a session this gate issued. */
  hasSession(cookieHeader: string | undefined): boolean {
    const value = cookieValue(cookieHeader, this.cookieName);
    if (value === undefined) return false;
    for (const id of this.sessions) {
      if (sameSecret(value, Buffer.from(id, 'hex'))) return true;
    }
    return false;
  }
}

/** The value of one cookie in a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

// Constant-time: a token compared byte by byte with early exit would leak its prefix by timing.
function sameSecret(candidateHex: string, secret: Buffer): boolean {
  if (!/^[0-9a-f]+$/.test(candidateHex) || candidateHex.length !== secret.length * 2) return false;
  return timingSafeEqual(Buffer.from(candidateHex, 'hex'), secret);
}
