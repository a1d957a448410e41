import { z } from 'zod';
import type { ErrorPayload } from './errors.js';
import { Manager1, type MethodName } from './manager1.js';
import type { ApplyProgress } from './payloads.js';

/**
 * The console's relay protocol, over a WebSocket (`serve`) or Electron IPC: the client sends
 * `{id, method, request}`, the relay answers `{id, result}` or `{id, error}` and pushes
 * `{push: 'ApplyProgress', payload}` for each progress signal of the core.
 */
export const RelayEnvelope = z
  .object({
    id: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    method: z.string().max(64),
    request: z.unknown(),
  })
  .strict();

/** A call the relay may forward: a Manager1 method and a request its schema accepts. */
export interface RelayCall {
  id: number;
  method: MethodName;
  request: unknown;
}

export type RelayReply =
  | { id: number; result: unknown }
  | { id: number | null; error: ErrorPayload }
  | { push: 'ApplyProgress'; payload: ApplyProgress };

/** Parses one message from the less-trusted side; an error reply names what was wrong with it. */
export function parseRelayMessage(text: string): { call: RelayCall } | { reply: RelayReply } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { reply: { id: null, error: { code: 'ParseError', message: 'the message is not JSON' } } };
  }
  const envelope = RelayEnvelope.safeParse(raw);
  if (!envelope.success) {
    const id = typeof (raw as { id?: unknown } | null)?.id === 'number' ? (raw as { id: number }).id : null;
    return {
      reply: {
        id,
        error: invalid(`the message must be {id, method, request}: ${firstIssue(envelope.error)}`),
      },
    };
  }
  const { id, method, request } = envelope.data;
  const checked = checkCall(method, request);
  if ('error' in checked) return { reply: { id, error: checked.error } };
  return { call: { id, method: checked.method, request: checked.request } };
}

/** Validates a method name and its request against the contract; used by every relay. */
export function checkCall(
  method: unknown,
  request: unknown,
): { method: MethodName; request: unknown } | { error: ErrorPayload } {
  if (typeof method !== 'string' || !Object.hasOwn(Manager1, method)) {
    return {
      error: invalid(
        `unknown method ${JSON.stringify(method)}; expected one of ${Object.keys(Manager1).join(', ')}`,
      ),
    };
  }
  const name = method as MethodName;
  const parsed = Manager1[name].request.safeParse(request);
  if (!parsed.success) return { error: invalid(`${name}: ${firstIssue(parsed.error)}`, parsed.error) };
  return { method: name, request: parsed.data };
}

function invalid(message: string, error?: z.ZodError): ErrorPayload {
  const path = error?.issues[0]?.path;
  return {
    code: 'InvalidArgument',
    message,
    ...(path !== undefined && path.length > 0
      ? { where: { pointer: `/${path.map(String).join('/')}` } }
      : {}),
  };
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'invalid';
  return issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ${issue.message}` : issue.message;
}
