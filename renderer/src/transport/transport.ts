import type { ApplyProgress, ErrorPayload, MethodName } from '../../../main/contract/index.js';

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
  call(method: MethodName, request: unknown): Promise<CallOutcome>;
  onProgress(listener: (p: ApplyProgress) => void): () => void;
  status(): TransportStatus;
  onStatus(listener: (s: TransportStatus) => void): () => void;
}
