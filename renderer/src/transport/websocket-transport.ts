import {
  ErrorPayload,
  parseRelayPush,
  RELAY_PROTOCOL,
  SESSION_ENDED_CLOSE_CODE,
  SESSION_FRAGMENT_KEY,
  SESSION_PROTOCOL_PREFIX,
  type MethodName,
  type RelayLocalMethod,
  type SignalName,
  type SignalPayload,
} from '../../../main/common/contract/index.js';
import { SignalListeners, type CallOutcome, type Transport, type TransportStatus } from './transport.js';

interface Pending {
  resolve: (outcome: CallOutcome) => void;
}

/** The minimal WebSocket surface used here, so tests can pass a fake socket. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  addEventListener(type: 'open' | 'error', listener: () => void): void;
  addEventListener(type: 'close', listener: (e: { code: number; reason: string }) => void): void;
  addEventListener(type: 'message', listener: (e: { data: unknown }) => void): void;
}

const OPEN = 1;
const SECRET_KEY = 'opdbus.session';
const SECRET = /^[0-9a-f]{64}$/;

/** What of the browser's page the session secret needs (tests pass a fake one). */
export interface ConsolePage {
  location: { hash: string; pathname: string; search: string };
  history: { replaceState(data: unknown, unused: string, url: string): void };
  localStorage: { getItem(key: string): string | null; setItem(key: string, value: string): void };
}

/**
 * The session secret `serve` handed the console in the URL fragment (`#session=<hex>`, see RELAY_PROTOCOL
 * in the contract). It is moved to this origin's localStorage, which no page of another port can read (an
 * origin includes the port, a cookie's site does not) and which every tab of the console shares, and the
 * fragment is removed from the address bar and the history entry. A secret left there once its session
 * has ended opens nothing.
 */
export function takeSessionSecret(page: ConsolePage): string | undefined {
  const fragment = new URLSearchParams(page.location.hash.replace(/^#/, '')).get(SESSION_FRAGMENT_KEY);
  if (fragment !== null && SECRET.test(fragment)) {
    page.localStorage.setItem(SECRET_KEY, fragment);
    page.history.replaceState(null, '', page.location.pathname + page.location.search);
  }
  const kept = page.localStorage.getItem(SECRET_KEY);
  return kept !== null && SECRET.test(kept) ? kept : undefined;
}

/** The WebSocket subprotocols the console offers `serve`: the relay's, and its session secret if it has one. */
export function relayProtocols(secret: string | undefined): string[] {
  return secret === undefined ? [RELAY_PROTOCOL] : [RELAY_PROTOCOL, SESSION_PROTOCOL_PREFIX + secret];
}

/** The Transport over the WebSocket of `op-dbus serve` (one socket; calls are matched to replies by id). */
export class WebSocketTransport implements Transport {
  readonly via = 'op-dbus serve';
  private readonly socket: SocketLike;
  private readonly pending = new Map<number, Pending>();
  private readonly queued: string[] = [];
  private readonly signals = new SignalListeners();
  private readonly statusListeners = new Set<(s: TransportStatus) => void>();
  private current: TransportStatus = 'connecting';
  private closedBecause: ErrorPayload = disconnected();
  private nextId = 1;

  constructor(open: () => SocketLike) {
    this.socket = open();
    this.socket.addEventListener('open', () => {
      for (const text of this.queued.splice(0)) this.socket.send(text);
      this.setStatus('open');
    });
    this.socket.addEventListener('close', (e) => this.closed(e));
    this.socket.addEventListener('message', (e) => this.received(e.data));
  }

  call(method: MethodName | RelayLocalMethod, request: unknown): Promise<CallOutcome> {
    if (this.current === 'closed') return Promise.resolve({ error: this.closedBecause });
    const id = this.nextId++;
    const text = JSON.stringify({ id, method, request });
    return new Promise((resolve) => {
      this.pending.set(id, { resolve });
      if (this.socket.readyState === OPEN) this.socket.send(text);
      else this.queued.push(text);
    });
  }

  onSignal<S extends SignalName>(name: S, listener: (payload: SignalPayload<S>) => void): () => void {
    return this.signals.add(name, listener);
  }

  status(): TransportStatus {
    return this.current;
  }

  onStatus(listener: (s: TransportStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  private received(data: unknown): void {
    if (typeof data !== 'string') return;
    let message: unknown;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null) return;
    const m = message as {
      id?: unknown;
      result?: unknown;
      error?: unknown;
      push?: unknown;
      payload?: unknown;
    };
    if ('push' in m) {
      // a signal the contract does not name, or a payload its schema rejects, is dropped
      const push = parseRelayPush(m.push, m.payload);
      if (push !== undefined) this.signals.emit(push.push, push.payload);
      return;
    }
    if (typeof m.id !== 'number') return;
    const waiting = this.pending.get(m.id);
    if (waiting === undefined) return;
    this.pending.delete(m.id);
    if ('error' in m) {
      const e = ErrorPayload.safeParse(m.error);
      waiting.resolve({
        error: e.success ? e.data : { code: 'Internal', message: 'the relay sent an unreadable error' },
      });
    } else {
      waiting.resolve({ result: m.result });
    }
  }

  private closed(e: { code: number; reason: string }): void {
    this.setStatus('closed');
    const error = e.code === SESSION_ENDED_CLOSE_CODE ? sessionEnded(e.reason) : disconnected();
    this.closedBecause = error;
    for (const [, p] of this.pending) p.resolve({ error });
    this.pending.clear();
  }

  private setStatus(s: TransportStatus): void {
    this.current = s;
    for (const l of this.statusListeners) l(s);
  }
}

function disconnected(): ErrorPayload {
  return {
    code: 'DBusCallFailed',
    message: 'the connection to op-dbus serve is closed; start it again and open the new URL it prints',
  };
}

function sessionEnded(reason: string): ErrorPayload {
  return {
    code: 'NotAuthorized',
    message: `${reason || 'the console session has ended'}; restart op-dbus serve and open the new URL it prints`,
  };
}
