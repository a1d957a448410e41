import { randomBytes, timingSafeEqual } from 'node:crypto';
import { SESSION_FRAGMENT_KEY } from '../../common/contract/index.js';
import { printable } from '../../common/text/printable.js';

/** How long a console session lives: since its last use, and at most since it was opened. */
export interface SessionLimits {
  idleMs: number;
  maxAgeMs: number;
}

/** 30 minutes without a call or a page load; 12 hours in all (a working day, not a week). */
export const DEFAULT_SESSION_LIMITS: SessionLimits = { idleMs: 30 * 60_000, maxAgeMs: 12 * 60 * 60_000 };

/** One console session: what the cookie names, what only the console's page holds, and who opened it. */
export interface ConsoleSession {
  /** A public name for logs and the audit (never the cookie or the secret). */
  readonly label: string;
  /** The client label sent to the core with each call (ClientLabel in the contract). */
  readonly client: string;
  readonly openedAt: number;
  lastUsed: number;
}

interface Held {
  session: ConsoleSession;
  id: Buffer;
  secret: Buffer;
}

/** What the gate decides for a request that carries a `token` query parameter. */
export type TokenRedemption =
  { ok: true; session: ConsoleSession; setCookie: string; location: string } | { ok: false; reason: string };

/** The session a WebSocket may use, or why not. */
export type SessionBinding = { ok: true; session: ConsoleSession } | { ok: false; reason: string };

const SECRET_BYTES = 32;
const LABEL_BYTES = 6;
const CLIENT_MAX = 200;

/**
 * The one-time URL token, and the session it is swapped for.
 *
 * `serve` prints one URL; the first GET with its token receives an HttpOnly SameSite=Strict cookie and
 * is redirected to `/#session=<secret>`, and the token is spent, so a URL copied from a terminal
 * scrollback or a shell history later is useless. The cookie alone opens nothing but the static files:
 * cookies are not isolated by port, so any other server on 127.0.0.1 (another user's) is sent it. A
 * WebSocket needs the cookie and the secret, which only the console's own page holds (see RELAY_PROTOCOL
 * in the contract). The cookie name carries the port, so two `serve`s never overwrite each other's.
 */
export class SessionGate {
  private pendingToken: Buffer | undefined;
  private readonly sessions: Held[] = [];
  readonly cookieName: string;

  constructor(
    port: number,
    readonly limits: SessionLimits = DEFAULT_SESSION_LIMITS,
    private readonly now: () => number = Date.now,
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
  redeem(candidate: string, userAgent?: string): TokenRedemption {
    const pending = this.pendingToken;
    if (pending === undefined)
      return {
        ok: false,
        reason: 'this console link was already used; restart `op-dbus serve` for a new one',
      };
    if (!sameSecret(candidate, pending)) return { ok: false, reason: 'wrong console token' };
    this.pendingToken = undefined;
    const id = this.random(SECRET_BYTES);
    const secret = this.random(SECRET_BYTES);
    const label = this.random(LABEL_BYTES).toString('hex');
    const browser = userAgent === undefined || userAgent === '' ? '' : ` (${printable(userAgent, 'line')})`;
    const now = this.now();
    const session: ConsoleSession = {
      label,
      client: `op-dbus serve: console session ${label}${browser}`.slice(0, CLIENT_MAX),
      openedAt: now,
      lastUsed: now,
    };
    this.sessions.push({ session, id, secret });
    return {
      ok: true,
      session,
      setCookie: `${this.cookieName}=${id.toString('hex')}; HttpOnly; SameSite=Strict; Path=/`,
      // always this path: nothing of the request (e.g. `//evil.example`) can send the secret elsewhere
      location: `/#${SESSION_FRAGMENT_KEY}=${secret.toString('hex')}`,
    };
  }

  /** The live session whose cookie this Cookie header carries (for the static files), or undefined. */
  sessionOf(cookieHeader: string | undefined): ConsoleSession | undefined {
    return this.heldBy(cookieHeader)?.session;
  }

  /** The live session of a WebSocket: its cookie and its page's secret must both match one session. */
  bind(cookieHeader: string | undefined, secret: string | undefined): SessionBinding {
    const held = this.heldBy(cookieHeader);
    if (held === undefined) return { ok: false, reason: 'no console session cookie' };
    if (secret === undefined)
      return { ok: false, reason: 'a session cookie without its page secret (a copied cookie?)' };
    if (!sameSecret(secret, held.secret))
      return { ok: false, reason: 'a session cookie with a wrong page secret (a copied cookie?)' };
    return { ok: true, session: held.session };
  }

  /** Marks a session used now: its idle time starts again. */
  touch(session: ConsoleSession): void {
    session.lastUsed = this.now();
  }

  /** Why a session has ended (idle too long, too old, or gone), or undefined while it lives. */
  endedWhy(session: ConsoleSession): string | undefined {
    if (!this.sessions.some((h) => h.session === session)) return 'the console session has ended';
    const now = this.now();
    if (now - session.openedAt >= this.limits.maxAgeMs)
      return `the console session is older than ${minutes(this.limits.maxAgeMs)}`;
    if (now - session.lastUsed >= this.limits.idleMs)
      return `the console session was idle for ${minutes(this.limits.idleMs)}`;
    return undefined;
  }

  /** Ends every session past its limits and returns each with why it ended. */
  endExpired(): { session: ConsoleSession; why: string }[] {
    const ended: { session: ConsoleSession; why: string }[] = [];
    for (let i = this.sessions.length - 1; i >= 0; i--) {
      const held = this.sessions[i] as Held;
      const why = this.endedWhy(held.session);
      if (why !== undefined) {
        this.sessions.splice(i, 1);
        ended.push({ session: held.session, why });
      }
    }
    return ended;
  }

  private heldBy(cookieHeader: string | undefined): Held | undefined {
    const value = cookieValue(cookieHeader, this.cookieName);
    if (value === undefined) return undefined;
    const held = this.sessions.find((h) => sameSecret(value, h.id));
    return held !== undefined && this.endedWhy(held.session) === undefined ? held : undefined;
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

function minutes(ms: number): string {
  const m = ms / 60_000;
  return m >= 1 ? `${+m.toFixed(1)} min` : `${+(ms / 1000).toFixed(1)} s`;
}

// Constant-time: a secret compared byte by byte with early exit would leak its prefix by timing.
function sameSecret(candidateHex: string, secret: Buffer): boolean {
  if (!/^[0-9a-f]+$/.test(candidateHex) || candidateHex.length !== secret.length * 2) return false;
  return timingSafeEqual(Buffer.from(candidateHex, 'hex'), secret);
}
