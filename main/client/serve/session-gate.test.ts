import { describe, expect, it } from 'vitest';
import { cookieValue, SessionGate, type TokenRedemption } from './session-gate.js';

type Redeemed = Extract<TokenRedemption, { ok: true }>;

/** A gate on a clock the test moves. */
function gateAt(limits = { idleMs: 1000, maxAgeMs: 5000 }): { gate: SessionGate; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  return { gate: new SessionGate(4242, limits, () => clock.now), clock };
}

function redeem(gate: SessionGate, ua?: string): Redeemed {
  const r = gate.redeem(gate.token ?? '', ua);
  if (!r.ok) throw new Error(r.reason);
  return r;
}

/** The cookie header and the page secret a browser holds after redeeming. */
function heldBy(r: Redeemed): { cookie: string; secret: string } {
  return {
    cookie: r.setCookie.split(';')[0] ?? '',
    secret: /^\/#session=([0-9a-f]{64})$/.exec(r.location)?.[1] ?? '',
  };
}

describe('SessionGate', () => {
  it('swaps the token once for an HttpOnly SameSite=Strict cookie and a redirect carrying the page secret', () => {
    const { gate } = gateAt();
    const token = gate.token ?? '';
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    const first = redeem(gate);
    expect(first.setCookie).toMatch(/^opdbus_session_4242=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=\/$/);
    expect(first.location).toMatch(/^\/#session=[0-9a-f]{64}$/);
    const { cookie, secret } = heldBy(first);
    expect(cookie.split('=')[1]).not.toBe(secret);
    expect(gate.token).toBeUndefined();
    expect(gate.redeem(token)).toEqual({
      ok: false,
      reason: expect.stringMatching(/already used/) as unknown,
    });
  });

  it('refuses a wrong token and keeps the right one valid', () => {
    const { gate } = gateAt();
    const token = gate.token ?? '';
    const wrong = (token[0] === 'a' ? 'b' : 'a') + token.slice(1);
    expect(gate.redeem(wrong)).toEqual({ ok: false, reason: 'wrong console token' });
    expect(gate.redeem('')).toMatchObject({ ok: false });
    expect(gate.redeem(`${token}00`)).toMatchObject({ ok: false });
    expect(gate.redeem(token.toUpperCase())).toMatchObject({ ok: false });
    expect(gate.redeem(token).ok).toBe(true);
  });

  it('a stolen cookie alone opens no WebSocket: the page secret must come with it', () => {
    const { gate } = gateAt();
    const r = redeem(gate);
    const { cookie, secret } = heldBy(r);
    expect(gate.bind(`other=1; ${cookie}`, secret)).toEqual({ ok: true, session: r.session });
    expect(gate.bind(cookie, undefined)).toMatchObject({ ok: false, reason: /without its page secret/ });
    expect(gate.bind(cookie, '0'.repeat(64))).toMatchObject({ ok: false, reason: /wrong page secret/ });
    expect(gate.bind(undefined, secret)).toMatchObject({ ok: false, reason: /no console session cookie/ });
    expect(gate.bind(cookie.replace('4242', '4243'), secret).ok).toBe(false);
    // the static files need only the cookie: they are the public build, not the core
    expect(gate.sessionOf(cookie)).toBe(r.session);
    expect(gate.sessionOf(`opdbus_session_4242=${'0'.repeat(64)}`)).toBeUndefined();
    expect(gate.sessionOf(undefined)).toBeUndefined();
  });

  it('labels the session for logs and the audit with a public name and the browser, never a secret', () => {
    const { gate } = gateAt();
    const r = redeem(gate, 'Mozilla/5.0 \u001b[2J(X11)');
    const { cookie, secret } = heldBy(r);
    expect(r.session.label).toMatch(/^[0-9a-f]{12}$/);
    expect(r.session.client).toBe(
      `op-dbus serve: console session ${r.session.label} (Mozilla/5.0 \\x1b[2J(X11))`,
    );
    expect(r.session.client).not.toContain(secret);
    expect(r.session.client).not.toContain(cookie.split('=')[1]);
    expect(redeem(gateAt().gate, 'x'.repeat(500)).session.client.length).toBe(200);
  });

  it('ends a session idle for idleMs; using it keeps it alive', () => {
    const { gate, clock } = gateAt();
    const r = redeem(gate);
    const { cookie, secret } = heldBy(r);
    clock.now += 900;
    gate.touch(r.session);
    clock.now += 900;
    expect(gate.bind(cookie, secret).ok).toBe(true);
    expect(gate.endExpired()).toEqual([]);
    clock.now += 1000;
    expect(gate.endedWhy(r.session)).toMatch(/idle for 1 s/);
    expect(gate.bind(cookie, secret).ok).toBe(false);
    expect(gate.endExpired()).toEqual([
      { session: r.session, why: expect.stringMatching(/idle/) as unknown },
    ]);
    expect(gate.endedWhy(r.session)).toMatch(/has ended/);
    expect(gate.endExpired()).toEqual([]);
  });

  it('ends a session at maxAgeMs however busy it is', () => {
    const { gate, clock } = gateAt();
    const r = redeem(gate);
    for (let t = 0; t < 5; t++) {
      clock.now += 999;
      gate.touch(r.session);
    }
    expect(gate.endedWhy(r.session)).toBeUndefined();
    clock.now += 5;
    expect(gate.endedWhy(r.session)).toMatch(/older than 5 s/);
    expect(gate.sessionOf(heldBy(r).cookie)).toBeUndefined();
  });
});

describe('cookieValue', () => {
  it('finds one cookie among several, tolerating spaces and values with =', () => {
    expect(cookieValue('a=1; b=x=y ;c=3', 'b')).toBe('x=y');
    expect(cookieValue('a=1', 'b')).toBeUndefined();
    expect(cookieValue('ab=1', 'a')).toBeUndefined();
  });
});
