import { describe, expect, it } from 'vitest';
import { checkCall, parseRelayMessage, parseRelayPush } from './relay.js';

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

const stats = {
  time: '2026-01-01T00:00:00.000Z',
  nodes: [{ id: 0, total_kb: 9005272, free_kb: 4000000 }],
  core: { pid: 42, cpu: 1, node: 0, affinity: [0, 1], rss_kb: 51200 },
  placement: { enabled: false, node: null, cpus: [], reason: 'one NUMA node: nothing to choose' },
  files: [{ name: 'audit/audit.sqlite', bytes: 4096, resident: 1 }],
  storage: { mode: 'plain', filesystem: 'ext4' },
};

describe('parseRelayPush', () => {
  it('accepts every signal of the contract with a payload its schema accepts', () => {
    expect(parseRelayPush('Metrics', stats)).toEqual({ push: 'Metrics', payload: stats });
    const progress = { planId: 'p', plugin: null, step: 'start', message: 'go' };
    expect(parseRelayPush('ApplyProgress', progress)).toEqual({ push: 'ApplyProgress', payload: progress });
  });

  it('drops names outside Signals, inherited names, and payloads of another schema', () => {
    for (const name of ['Reboot', '__proto__', 'constructor', 'hasOwnProperty', 42, null])
      expect(parseRelayPush(name, stats), String(name)).toBeUndefined();
    // a Metrics payload pushed as ApplyProgress, and a Metrics payload with a wrong field type
    expect(parseRelayPush('ApplyProgress', stats)).toBeUndefined();
    expect(parseRelayPush('Metrics', { ...stats, nodes: [{ id: 0, total_kb: '9005272', free_kb: 1 }] })).toBe(
      undefined,
    );
  });
});

describe('relay-local methods', () => {
  it('answers Witness locally, never as a call for the core, and checks its request', () => {
    expect(parseRelayMessage(JSON.stringify({ id: 5, method: 'Witness', request: {} }))).toEqual({
      local: { id: 5, method: 'Witness', request: {} },
    });
    expect(
      parseRelayMessage(JSON.stringify({ id: 6, method: 'Witness', request: { forget: true } })),
    ).toMatchObject({ reply: { id: 6, error: { code: 'InvalidArgument' } } });
    expect(checkCall('Witness', {})).toMatchObject({ error: { code: 'InvalidArgument' } });
  });
});
