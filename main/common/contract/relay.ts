import { z } from 'zod';
import type { ErrorPayload } from './errors.js';
import { Manager1, Signals, type MethodName, type SignalName } from './manager1.js';

/**
 * The console's relay protocol, over a WebSocket (`serve`) or Electron IPC: the client sends
 * `{id, method, request}`, the relay answers `{id, result}` or `{id, error}` and pushes
 * `{push: <signal name>, payload}` for each signal of the core (every name in `Signals`, its
 * payload checked against that signal's schema on both sides).
 *
 * Besides the Manager1 methods, which the relay forwards to the core, the relay answers the
 * methods of `RelayLocal` itself and never sends them to the core: they report what the relay
 * (a process of the user on the workstation) knows and the core must not be asked, such as the
 * witness's verdict on the core's own log.
 */
export const RelayEnvelope = z
  .object({
    id: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    method: z.string().max(64),
    request: z.unknown(),
  })
  .strict();

/**
 * The witness's verdict (DESIGN.md section 5), as the relay tells the console:
 * - `in-sync`: the host's signed checkpoint extends the last one this user saw (consistency proof checked);
 * - `first-contact`: no earlier checkpoint of this host: the current one is trusted on first use and kept;
 * - `tampering`: the host's log is not an extension of what was seen before, or it cannot prove it is;
 * - `not-witnessed`: the check did not run (switched off, no state dir, the core refused to answer).
 */
export const WitnessSeen = z.object({
  size: z.number().int().nonnegative(),
  root: z.string(),
  seenAt: z.string(),
});
export const WitnessReport = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('in-sync'),
    endpoint: z.string(),
    checkpoint: WitnessSeen,
    /** The checkpoint this one was proven to extend, when the log grew since. */
    previous: WitnessSeen.optional(),
  }),
  z.object({ status: z.literal('first-contact'), endpoint: z.string(), checkpoint: WitnessSeen }),
  z.object({
    status: z.literal('tampering'),
    endpoint: z.string(),
    reason: z.string(),
    previous: WitnessSeen.optional(),
  }),
  z.object({ status: z.literal('not-witnessed'), reason: z.string() }),
]);
export type WitnessReport = z.infer<typeof WitnessReport>;

/**
 * How the console proves to `serve` that it is the page the one-time URL opened, not a process that only
 * holds a copy of the session cookie (cookies are not isolated by port: every server on 127.0.0.1 is sent
 * them). Redeeming the URL's token redirects to `/#session=<secret>`: a fragment never leaves the browser,
 * the page keeps the secret in its own origin's localStorage, and offers it on each WebSocket as the
 * subprotocol `opdbus.session.<secret>` beside `opdbus.relay.v1` (the one `serve` answers with).
 */
export const RELAY_PROTOCOL = 'opdbus.relay.v1';
export const SESSION_PROTOCOL_PREFIX = 'opdbus.session.';
export const SESSION_FRAGMENT_KEY = 'session';
/** The close code of a console WebSocket whose session ended (idle too long, or too old); the reason says which. */
export const SESSION_ENDED_CLOSE_CODE = 4001;

/**
 * Whether an audit entry is in the log the witness vouches for: the core's inclusion proof for it,
 * checked by the relay (the user's process) against the last checkpoint the witness accepted, not
 * against anything the core says now.
 */
export const InclusionReport = z.object({
  seq: z.number().int(),
  verified: z.boolean(),
  /** The witnessed checkpoint's tree size and root (base64) the proof was checked against. */
  size: z.number().int().optional(),
  root: z.string().optional(),
  seenAt: z.string().optional(),
  /** Why it is not verified, for a person. */
  reason: z.string().optional(),
});
export type InclusionReport = z.infer<typeof InclusionReport>;

/** The methods the relay answers itself; none of them reaches the core. */
export const RelayLocal = {
  Witness: { request: z.object({}).strict(), response: WitnessReport },
  VerifyInclusion: {
    request: z.object({ seq: z.number().int().nonnegative() }).strict(),
    response: InclusionReport,
  },
} as const;
export type RelayLocalMethod = keyof typeof RelayLocal;

/** A call the relay may forward: a Manager1 method and a request its schema accepts. */
export interface RelayCall {
  id: number;
  method: MethodName;
  request: unknown;
}

/** A call the relay answers itself. */
export interface RelayLocalCall {
  id: number;
  method: RelayLocalMethod;
  /** Validated against RelayLocal[method].request. */
  request: unknown;
}

/** The payload of a signal, as its schema in `Signals` outputs it. */
export type SignalPayload<S extends SignalName> = z.output<(typeof Signals)[S]>;

/** One push per signal of the contract, its payload typed by that signal's schema. */
export type RelayPush = { [S in SignalName]: { push: S; payload: SignalPayload<S> } }[SignalName];

export type RelayReply =
  { id: number; result: unknown } | { id: number | null; error: ErrorPayload } | RelayPush;

/** Parses one message from the less-trusted side; an error reply names what was wrong with it. */
export function parseRelayMessage(
  text: string,
): { call: RelayCall } | { local: RelayLocalCall } | { reply: RelayReply } {
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
  const local = checkLocalCall(method, request);
  if (local !== undefined) {
    return 'error' in local
      ? { reply: { id, error: local.error } }
      : { local: { id, method: local.method, request: local.request } };
  }
  const checked = checkCall(method, request);
  if ('error' in checked) return { reply: { id, error: checked.error } };
  return { call: { id, method: checked.method, request: checked.request } };
}

/**
 * Recognises a RelayLocal method: undefined when the name is not one (then it may be a Manager1
 * method), else the method or why its request is refused.
 */
export function checkLocalCall(
  method: unknown,
  request: unknown,
): { method: RelayLocalMethod; request: unknown } | { error: ErrorPayload } | undefined {
  if (typeof method !== 'string' || !Object.hasOwn(RelayLocal, method)) return undefined;
  const name = method as RelayLocalMethod;
  const parsed = RelayLocal[name].request.safeParse(request);
  if (!parsed.success) return { error: invalid(`${name}: ${firstIssue(parsed.error)}`, parsed.error) };
  return { method: name, request: parsed.data };
}

/** Validates a method name and its request against the contract; used by every relay. */
export function checkCall(
  method: unknown,
  request: unknown,
): { method: MethodName; request: unknown } | { error: ErrorPayload } {
  if (typeof method !== 'string' || !Object.hasOwn(Manager1, method)) {
    return {
      error: invalid(
        `unknown method ${JSON.stringify(method)}; expected one of ${[...Object.keys(Manager1), ...Object.keys(RelayLocal)].join(', ')}`,
      ),
    };
  }
  const name = method as MethodName;
  const parsed = Manager1[name].request.safeParse(request);
  if (!parsed.success) return { error: invalid(`${name}: ${firstIssue(parsed.error)}`, parsed.error) };
  return { method: name, request: parsed.data };
}

/**
 * Checks a push from the relay (the less-trusted side, seen from the renderer): a signal the
 * contract names and a payload its schema accepts, else undefined.
 */
export function parseRelayPush(name: unknown, payload: unknown): RelayPush | undefined {
  if (typeof name !== 'string' || !Object.hasOwn(Signals, name)) return undefined;
  const signal = name as SignalName;
  const parsed = Signals[signal].safeParse(payload);
  return parsed.success ? ({ push: signal, payload: parsed.data } as RelayPush) : undefined;
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
