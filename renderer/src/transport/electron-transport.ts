import { ApplyProgress, ErrorPayload, type MethodName } from '../../../main/contract/index.js';
import type { CallOutcome, Transport, TransportStatus } from './transport.js';

/** What the Electron preload exposes as `window.opdbus` (electron/preload.cts). */
export interface ConsoleBridge {
  call(method: string, request: unknown): Promise<unknown>;
  onProgress(listener: (payload: unknown) => void): () => void;
}

/** The Transport over Electron IPC; the bridge's answers are checked like any other input. */
export class ElectronTransport implements Transport {
  readonly via = 'Electron';

  constructor(private readonly bridge: ConsoleBridge) {}

  async call(method: MethodName, request: unknown): Promise<CallOutcome> {
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

  onProgress(listener: (p: ApplyProgress) => void): () => void {
    return this.bridge.onProgress((payload) => {
      const p = ApplyProgress.safeParse(payload);
      if (p.success) listener(p.data);
    });
  }

  status(): TransportStatus {
    return 'open';
  }

  onStatus(): () => void {
    return () => undefined;
  }
}
