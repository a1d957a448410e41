import type {
  ErrorPayload,
  MethodName,
  RelayLocalMethod,
  SignalName,
  SignalPayload,
} from '../../../main/common/contract/index.js';

export type TransportStatus = 'connecting' | 'open' | 'closed';

/** The answer to one call, as both relays (`serve`, the Electron main) send it. */
export type CallOutcome = { result: unknown } | { error: ErrorPayload };

/**
 * How the console reaches the core: a WebSocket to `op-dbus serve`, or IPC to the Electron main.
 * Views and the core client never know which one carries them.
 */
export interface Transport {
  /** A short name for the header, e.g. "op-dbus serve". */
  readonly via: string;
  /** A Manager1 method (forwarded to the core) or a relay-local one (answered by the relay). */
  call(method: MethodName | RelayLocalMethod, request: unknown): Promise<CallOutcome>;
  /** Each signal of this name the core sends, its payload checked against the contract. */
  onSignal<S extends SignalName>(name: S, listener: (payload: SignalPayload<S>) => void): () => void;
  status(): TransportStatus;
  onStatus(listener: (s: TransportStatus) => void): () => void;
}

/** Listeners per signal name, for the transports (the payload is checked before it gets here). */
export class SignalListeners {
  private readonly byName = new Map<SignalName, Set<(payload: never) => void>>();

  add<S extends SignalName>(name: S, listener: (payload: SignalPayload<S>) => void): () => void {
    let set = this.byName.get(name);
    if (set === undefined) this.byName.set(name, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  emit<S extends SignalName>(name: S, payload: SignalPayload<S>): void {
    for (const l of this.byName.get(name) ?? []) (l as (p: SignalPayload<S>) => void)(payload);
  }
}
