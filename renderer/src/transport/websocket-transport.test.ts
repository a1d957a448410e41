import { describe, expect, it } from 'vitest';
import type { Stats } from '../../../main/common/contract/index.js';
import { WebSocketTransport, type SocketLike } from './websocket-transport.js';

/** A socket the test drives: it records what the transport sends and delivers what the test says. */
class FakeSocket implements SocketLike {
  readyState = 0;
  sent: string[] = [];
  private readonly handlers = new Map<string, ((e: { data: unknown }) => void)[]>();

  send(data: string): void {
    this.sent.push(data);
  }

  addEventListener(type: string, listener: (e: { data: unknown }) => void): void {
    this.handlers.set(type, [...(this.handlers.get(type) ?? []), listener]);
  }

  fire(type: 'open' | 'close'): void {
    if (type === 'open') this.readyState = 1;
    for (const h of this.handlers.get(type) ?? []) h({ data: undefined });
  }

  deliver(message: unknown): void {
    for (const h of this.handlers.get('message') ?? []) h({ data: JSON.stringify(message) });
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
});
