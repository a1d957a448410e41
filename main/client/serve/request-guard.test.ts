import { describe, expect, it } from 'vitest';
import { checkHost, checkUpgrade, offeredSecret } from './request-guard.js';

describe('checkHost', () => {
  it('accepts 127.0.0.1 and localhost on the served port only', () => {
    expect(checkHost('127.0.0.1:8080', 8080)).toBeUndefined();
    expect(checkHost('localhost:8080', 8080)).toBeUndefined();
    expect(checkHost('LOCALHOST:8080', 8080)).toBeUndefined();
  });

  it('refuses rebinding names, other ports, a missing port and no Host at all', () => {
    expect(checkHost('evil.example:8080', 8080)).toMatch(/not this console/);
    expect(checkHost('127.0.0.1:8081', 8080)).toMatch(/not this console/);
    expect(checkHost('127.0.0.1', 8080)).toMatch(/not this console/);
    expect(checkHost('[::1]:8080', 8080)).toMatch(/not this console/);
    expect(checkHost(undefined, 8080)).toBe('no Host header');
  });
});

describe('checkUpgrade', () => {
  const ok = { host: '127.0.0.1:9000', origin: 'http://127.0.0.1:9000' };

  it('passes the served origin with a session', () => {
    expect(checkUpgrade(ok, 9000, undefined)).toBeUndefined();
    expect(
      checkUpgrade({ host: 'localhost:9000', origin: 'http://localhost:9000' }, 9000, undefined),
    ).toBeUndefined();
  });

  it('refuses any other origin, even a sibling of the served one', () => {
    for (const origin of [
      'http://evil.example',
      'http://127.0.0.1:9001',
      'https://127.0.0.1:9000',
      'http://localhost:9000',
      'null',
      'http://127.0.0.1:9000/',
    ]) {
      expect(checkUpgrade({ ...ok, origin }, 9000, undefined), origin).toMatch(/Origin/);
    }
    expect(checkUpgrade({ host: ok.host }, 9000, undefined)).toBe('no Origin header');
  });

  it('refuses without a session and with a foreign Host', () => {
    expect(checkUpgrade(ok, 9000, 'a session cookie without its page secret')).toMatch(
      /no console session \(a session cookie without its page secret\)/,
    );
    expect(
      checkUpgrade({ host: 'evil.example:9000', origin: 'http://evil.example:9000' }, 9000, undefined),
    ).toMatch(/Host/);
  });
});

describe('offeredSecret', () => {
  it('finds the page secret among the offered subprotocols', () => {
    expect(offeredSecret(new Set(['opdbus.relay.v1', 'opdbus.session.ab12']))).toBe('ab12');
    expect(offeredSecret(new Set(['opdbus.relay.v1']))).toBeUndefined();
  });
});
