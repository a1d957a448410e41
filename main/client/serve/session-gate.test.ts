import { describe, expect, it } from 'vitest';
import { cookieValue, SessionGate } from './session-gate.js';

describe('SessionGate', () => {
  it('swaps the token for an HttpOnly SameSite=Strict cookie exactly once', () => {
    const gate = new SessionGate(8123);
    const token = gate.token ?? '';
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    const first = gate.redeem(token);
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    expect(first.setCookie).toBe(`opdbus_session_8123=${first.sessionId}; HttpOnly; SameSite=Strict; Path=/`);
    expect(gate.token).toBeUndefined();
    expect(gate.redeem(token)).toEqual({
      ok: false,
      reason: expect.stringMatching(/already used/) as unknown,
    });
  });

  it('refuses a wrong token and keeps the right one valid', () => {
    const gate = new SessionGate(1);
    const token = gate.token ?? '';
    const wrong = (token[0] === 'a' ? 'b' : 'a') + token.slice(1);
    expect(gate.redeem(wrong)).toEqual({ ok: false, reason: 'wrong console token' });
    expect(gate.redeem('')).toMatchObject({ ok: false });
    expect(gate.redeem(`${token}00`)).toMatchObject({ ok: false });
    expect(gate.redeem(token.toUpperCase())).toMatchObject({ ok: false });
    expect(gate.redeem(token).ok).toBe(true);
  });

  it('recognises only the sessions it issued, under its own port-named cookie', () => {
    const gate = new SessionGate(4242);
    const r = gate.redeem(gate.token ?? '');
    if (!r.ok) throw new Error('redeem failed');
    expect(gate.hasSession(`other=1; opdbus_session_4242=${r.sessionId}`)).toBe(true);
    expect(gate.hasSession(`opdbus_session_4243=${r.sessionId}`)).toBe(false);
    expect(gate.hasSession(`opdbus_session_4242=${'0'.repeat(64)}`)).toBe(false);
    expect(gate.hasSession(undefined)).toBe(false);
    expect(gate.hasSession('')).toBe(false);
  });
});

describe('cookieValue', () => {
  it('finds one cookie among several, tolerating spaces and values with =', () => {
    expect(cookieValue('a=1; b=x=y ;c=3', 'b')).toBe('x=y');
    expect(cookieValue('a=1', 'b')).toBeUndefined();
    expect(cookieValue('ab=1', 'a')).toBeUndefined();
  });
});
