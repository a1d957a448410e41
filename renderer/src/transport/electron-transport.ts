import {
  ErrorPayload,
  parseRelayPush,
  type MethodName,
  type RelayLocalMethod,
  type SignalName,
  type SignalPayload,
} from '../../../main/common/contract/index.js';
import type { CallOutcome, Transport, TransportStatus } from './transport.js';

/** What the Electron preload exposes as `window.opdbus` (electron/preload.cts). */
export interface ConsoleBridge {
  call(method: string, request: unknown): Promise<unknown>;
  onSignal(name: string, listener: (payload: unknown) => void): () => void;
}

/** The Transport over Electron IPC; the bridge's answers are checked like any other input. */
export class ElectronTransport implements Transport {
  readonly via = 'Electron';

  constructor(private readonly bridge: ConsoleBridge) {}

  async call(method: MethodName | RelayLocalMethod, request: unknown): Promise<CallOutcome> {
    let answer: unknown;
    try {
      answer = await this.bridge.call(method, request);
    } catch (e) {
      return { error: { code: 'Internal', message: e instanceof Error ? e.message : String(e) } };
    }
    if (typeof answer === 'object' && answer !== null && 'error' in answer) {
      const e = ErrorPayload.safeParse((answer as { error: unknown }).error);
      return {
        error: e.success ? e.data : { code: 'Internal', message: 'the shell sent an unreadable error' },
      };
    }
    if (typeof answer === 'object' && answer !== null && 'result' in answer)
      return { result: (answer as { result: unknown }).result };
    return { error: { code: 'Internal', message: 'the shell sent an answer without a result' } };
  }

  onSignal<S extends SignalName>(name: S, listener: (payload: SignalPayload<S>) => void): () => void {
    return this.bridge.onSignal(name, (payload) => {
      const push = parseRelayPush(name, payload);
      if (push?.push === name) listener(push.payload as SignalPayload<S>);
    });
  }

  status(): TransportStatus {
    return 'open';
  }

  onStatus(): () => void {
    return () => undefined;
  }
}
