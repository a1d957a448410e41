import { describe, expect, it } from 'vitest';
import type { Stats } from '../../../main/common/contract/index.js';
import {
  relayProtocols,
  takeSessionSecret,
  WebSocketTransport,
  type ConsolePage,
  type SocketLike,
} from './websocket-transport.js';

interface SocketEvent {
  data: unknown;
  code: number;
  reason: string;
}

/** A socket the test drives: it records what the transport sends and delivers what the test says. */
class FakeSocket implements SocketLike {
  readyState = 0;
  sent: string[] = [];
  private readonly handlers = new Map<string, ((e: SocketEvent) => void)[]>();

  send(data: string): void {
    this.sent.push(data);
  }

  addEventListener(type: string, listener: (e: SocketEvent) => void): void {
    this.handlers.set(type, [...(this.handlers.get(type) ?? []), listener]);
  }

  fire(type: 'open' | 'close', close = { code: 1006, reason: '' }): void {
    if (type === 'open') this.readyState = 1;
    for (const h of this.handlers.get(type) ?? []) h({ data: undefined, ...close });
  }

  deliver(message: unknown): void {
    for (const h of this.handlers.get('message') ?? [])
      h({ data: JSON.stringify(message), code: 0, reason: '' });
  }
}

const stats: Stats = {
  time: '2026-01-01T00:00:00.000Z',
  nodes: [{ id: 0, total_kb: 9005272, free_kb: 4000000 }],
  core: { pid: 42, cpu: 1, node: 0, affinity: [0, 1], rss_kb: 51200 },
  placement: { enabled: false, node: null, cpus: [], reason: 'one node' },
  files: [],
  storage: { mode: 'plain', filesystem: 'ext4' },
};

function open(): { socket: FakeSocket; transport: WebSocketTransport } {
  const socket = new FakeSocket();
  const transport = new WebSocketTransport(() => socket);
  socket.fire('open');
  return { socket, transport };
}

describe('WebSocketTransport signals', () => {
  it('hands each valid push to the listeners of that signal only', () => {
    const { socket, transport } = open();
    const metrics: Stats[] = [];
    const progress: unknown[] = [];
    const stop = transport.onSignal('Metrics', (s) => metrics.push(s));
    transport.onSignal('ApplyProgress', (p) => progress.push(p));
    socket.deliver({ push: 'Metrics', payload: stats });
    expect(metrics).toEqual([stats]);
    expect(progress).toEqual([]);
    stop();
    socket.deliver({ push: 'Metrics', payload: stats });
    expect(metrics).toHaveLength(1);
  });

  it('drops pushes the contract does not name or whose payload its schema rejects', () => {
    const { socket, transport } = open();
    const seen: unknown[] = [];
    transport.onSignal('Metrics', (s) => seen.push(s));
    socket.deliver({ push: 'Metrics', payload: { ...stats, nodes: 'lots' } });
    socket.deliver({ push: 'constructor', payload: stats });
    socket.deliver({ push: 'ApplyProgress', payload: stats });
    expect(seen).toEqual([]);
  });
});

describe('WebSocketTransport calls', () => {
  it('sends relay-local methods like any call and matches the answer by id', async () => {
    const { socket, transport } = open();
    const answer = transport.call('Witness', {});
    expect(JSON.parse(socket.sent[0] ?? '')).toEqual({ id: 1, method: 'Witness', request: {} });
    socket.deliver({ id: 1, result: { status: 'not-witnessed', reason: 'off' } });
    expect(await answer).toEqual({ result: { status: 'not-witnessed', reason: 'off' } });
  });

  it('says the session ended, with the reason serve gave, when serve closes it for that', async () => {
    const { socket, transport } = open();
    const pending = transport.call('Schema', {});
    socket.fire('close', { code: 4001, reason: 'the console session was idle for 30 min' });
    expect(await pending).toEqual({
      error: {
        code: 'NotAuthorized',
        message:
          'the console session was idle for 30 min; restart op-dbus serve and open the new URL it prints',
      },
    });
    expect(await transport.call('Schema', {})).toMatchObject({ error: { code: 'NotAuthorized' } });
  });
});

/** A page at `url` with its origin's localStorage, recording what replaceState made of the address. */
function page(url: string): ConsolePage & { address: () => string; stored: Map<string, string> } {
  const stored = new Map<string, string>();
  let address = new URL(url);
  return {
    get location() {
      return { hash: address.hash, pathname: address.pathname, search: address.search };
    },
    history: { replaceState: (_d, _u, to) => (address = new URL(to, address)) },
    localStorage: { getItem: (k) => stored.get(k) ?? null, setItem: (k, v) => void stored.set(k, v) },
    address: () => address.href,
    stored,
  };
}

describe('the session secret', () => {
  const secret = 'ab'.repeat(32);

  it('moves from the fragment serve redirected to into localStorage, and leaves the address bar', () => {
    const p = page(`http://127.0.0.1:8080/#session=${secret}`);
    expect(takeSessionSecret(p)).toBe(secret);
    expect(p.address()).toBe('http://127.0.0.1:8080/');
    // a reload, or another tab of the console, finds it again
    expect(takeSessionSecret(p)).toBe(secret);
    expect(relayProtocols(secret)).toEqual(['opdbus.relay.v1', `opdbus.session.${secret}`]);
  });

  it('is absent in a tab that was not opened by the one-time URL, and a malformed one is ignored', () => {
    expect(takeSessionSecret(page('http://127.0.0.1:8080/'))).toBeUndefined();
    const p = page('http://127.0.0.1:8080/#session=zz');
    expect(takeSessionSecret(p)).toBeUndefined();
    expect(p.stored.size).toBe(0);
    expect(relayProtocols(undefined)).toEqual(['opdbus.relay.v1']);
  });
});
