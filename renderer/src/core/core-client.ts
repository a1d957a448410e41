import type { z } from 'zod';
import {
  describeError,
  Manager1,
  OpError,
  RelayLocal,
  type MethodName,
  type RelayLocalMethod,
  type RequestOf,
  type ResponseOf,
} from '../../../main/common/contract/index.js';
import type { Transport } from '../transport/transport.js';

/** The typed client the views use: one method per Manager1 call, answers checked against the contract. */
export class CoreClient {
  constructor(readonly transport: Transport) {}

  /** Resolves with the core's answer, or rejects with an OpError whose message is for a person. */
  async call<M extends MethodName>(method: M, request: RequestOf<M>): Promise<ResponseOf<M>> {
    const outcome = await this.transport.call(method, request);
    if ('error' in outcome) throw OpError.fromPayload(outcome.error);
    const parsed = Manager1[method].response.safeParse(outcome.result);
    if (!parsed.success) throw new OpError('Internal', `${method}: the answer does not match the contract`);
    return parsed.data as ResponseOf<M>;
  }

  /** Asks the relay itself (never the core), e.g. for the witness's verdict on the core's log. */
  async callRelay<M extends RelayLocalMethod>(
    method: M,
    request: z.input<(typeof RelayLocal)[M]['request']>,
  ): Promise<z.output<(typeof RelayLocal)[M]['response']>> {
    const outcome = await this.transport.call(method, request);
    if ('error' in outcome) throw OpError.fromPayload(outcome.error);
    const parsed = RelayLocal[method].response.safeParse(outcome.result);
    if (!parsed.success) throw new OpError('Internal', `${method}: the answer does not match the contract`);
    return parsed.data as z.output<(typeof RelayLocal)[M]['response']>;
  }
}

/** The error as one readable line (and its code), whatever was thrown. */
export function readableError(e: unknown): { code: string; message: string; line: string } {
  if (e instanceof OpError) {
    const p = e.toPayload();
    return { code: p.code, message: p.message, line: describeError(p) };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { code: 'Internal', message, line: `Internal: ${message}` };
}
