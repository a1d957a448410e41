import { describe, expect, it } from 'vitest';
import { parseRelayMessage } from './relay.js';

const hash = 'a'.repeat(64);

describe('parseRelayMessage', () => {
  it('accepts a Manager1 method with a request its schema accepts', () => {
    expect(
      parseRelayMessage(JSON.stringify({ id: 7, method: 'Approve', request: { planId: 'p', hash } })),
    ).toEqual({
      call: { id: 7, method: 'Approve', request: { planId: 'p', hash } },
    });
    expect(parseRelayMessage(JSON.stringify({ id: 0, method: 'Schema', request: {} }))).toMatchObject({
      call: { method: 'Schema' },
    });
  });

  it('answers non-JSON and malformed envelopes with a readable error', () => {
    expect(parseRelayMessage('{')).toEqual({
      reply: { id: null, error: { code: 'ParseError', message: 'the message is not JSON' } },
    });
    const noId = parseRelayMessage(JSON.stringify({ method: 'Schema', request: {} }));
    expect(noId).toMatchObject({ reply: { id: null, error: { code: 'InvalidArgument' } } });
    const extra = parseRelayMessage(JSON.stringify({ id: 1, method: 'Schema', request: {}, sudo: true }));
    expect(extra).toMatchObject({ reply: { id: 1, error: { code: 'InvalidArgument' } } });
  });

  it('refuses methods outside Manager1, including inherited property names', () => {
    for (const method of ['Reboot', '__proto__', 'constructor', 'toString']) {
      const r = parseRelayMessage(JSON.stringify({ id: 2, method, request: {} }));
      expect(r, method).toMatchObject({
        reply: {
          id: 2,
          error: { code: 'InvalidArgument', message: expect.stringMatching(/unknown method/) as unknown },
        },
      });
    }
  });

  it('refuses a request the method schema rejects, naming the field', () => {
    const r = parseRelayMessage(
      JSON.stringify({ id: 3, method: 'Apply', request: { planId: 'p', hash: 'short' } }),
    );
    expect(r).toMatchObject({
      reply: { id: 3, error: { code: 'InvalidArgument', where: { pointer: '/hash' } } },
    });
    const unknownKey = parseRelayMessage(
      JSON.stringify({ id: 4, method: 'Query', request: { plugins: [], all: true } }),
    );
    expect(unknownKey).toMatchObject({ reply: { id: 4, error: { code: 'InvalidArgument' } } });
  });
});
