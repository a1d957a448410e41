import dbus from 'dbus-next';
import { z } from 'zod';
import {
  BUS_NAME,
  ERROR_NAME_PREFIX,
  INTERFACE_NAME,
  Manager1,
  OBJECT_PATH,
  OpError,
  introspectionXml,
  takeClientLabel,
  Signals,
  type AuditActor,
  type SignalName,
  type MethodName,
} from '../../common/contract/index.js';
import { callerCredentials, type Message, type MessageBus } from '../../common/dbus/calls.js';
import { issuePointer } from '../engine/document.js';
import type { Authority, Caller } from './authority.js';
import { SignalSubscribers } from './signal-subscribers.js';

/**
 * The largest request body read: the largest payload is a 4 Mi-character document (PlanRequest), which
 * JSON escaping can at most double, plus its envelope.
 */
export const MAX_REQUEST_CHARS = 9 * 1024 * 1024;

/** The D-Bus header flag by which a caller says it can answer an authentication prompt. */
const ALLOW_INTERACTIVE_AUTHORIZATION = 0x4;

/** What each Manager1 method does once the request is valid and the caller authorised. */
export type Handlers = {
  [M in MethodName]: (
    request: z.output<(typeof Manager1)[M]['request']>,
    actor: AuditActor,
  ) => Promise<unknown> | unknown;
};

/**
 * What polkit is told about a call beyond its action, computed from the validated request (e.g. the
 * plugins an apply touches, so a rules file can allow `lxc` and refuse `net`).
 */
export type AuthorizationDetails = {
  [M in MethodName]?: (request: z.output<(typeof Manager1)[M]['request']>) => Record<string, string>;
};

export interface ServiceOptions {
  bus: MessageBus;
  authority: Authority;
  handlers: Handlers;
  authorizationDetails?: AuthorizationDetails;
  /** Records a refused call (kind auth-denied). */
  onDenied: (actor: AuditActor, method: string, reason: string) => void;
}

/**
 * org.opdbus.Manager1 on the bus. Built on dbus-next's raw method handler rather than its
 * Interface class, because every call needs the sender's unique name for authorisation.
 */
export class Manager1Service {
  private readonly handler = (msg: Message): boolean => this.onMessage(msg);
  private readonly subscribers: SignalSubscribers;

  constructor(private readonly o: ServiceOptions) {
    this.subscribers = new SignalSubscribers(o.bus);
  }

  /** Takes the well-known name; fails if another core already holds it. */
  async claimName(): Promise<void> {
    this.o.bus.addMethodHandler(this.handler);
    const reply = await this.o.bus.requestName(BUS_NAME, dbus.NameFlag.DO_NOT_QUEUE);
    if (reply !== dbus.RequestNameReply.PRIMARY_OWNER && reply !== dbus.RequestNameReply.ALREADY_OWNER) {
      this.o.bus.removeMethodHandler(this.handler);
      throw new OpError('Internal', `${BUS_NAME} is already owned on this bus: another core is running`, {
        dbus: { service: BUS_NAME },
      });
    }
  }

  /** Sends one of the contract's signals (a JSON string, like every payload) to each of its subscribers only. */
  emit<S extends SignalName>(name: S, payload: z.input<(typeof Signals)[S]>): void {
    const body = [JSON.stringify(payload)];
    for (const destination of this.subscribers.recipients(name)) {
      this.o.bus.send(
        new dbus.Message({
          type: dbus.MessageType.SIGNAL,
          destination,
          path: OBJECT_PATH,
          interface: INTERFACE_NAME,
          member: name,
          signature: 's',
          body,
        }),
      );
    }
  }

  /** Manager1.Subscribe: the caller (a unique bus name) receives these signals until it leaves the bus. */
  async subscribe(sender: string, signals: readonly SignalName[]): Promise<{ signals: SignalName[] }> {
    return { signals: await this.subscribers.add(sender, signals) };
  }

  async release(): Promise<void> {
    this.o.bus.removeMethodHandler(this.handler);
    this.subscribers.close();
    await this.o.bus.releaseName(BUS_NAME).catch(() => undefined);
  }

  private onMessage(msg: Message): boolean {
    if (msg.path !== OBJECT_PATH) return false;
    if (msg.interface === 'org.freedesktop.DBus.Introspectable' && msg.member === 'Introspect') {
      this.o.bus.send(dbus.Message.newMethodReturn(msg, 's', [introspectionXml()]));
      return true;
    }
    if (msg.interface === 'org.freedesktop.DBus.Peer' && msg.member === 'Ping') {
      this.o.bus.send(dbus.Message.newMethodReturn(msg, '', []));
      return true;
    }
    if (msg.interface !== INTERFACE_NAME && msg.interface !== undefined && msg.interface !== null)
      return false;
    if (!Object.hasOwn(Manager1, msg.member)) return false;
    void this.dispatch(msg, msg.member as MethodName);
    return true;
  }

  private async dispatch(msg: Message, method: MethodName): Promise<void> {
    try {
      const result = await this.run(msg, method);
      this.o.bus.send(dbus.Message.newMethodReturn(msg, 's', [JSON.stringify(result)]));
    } catch (e) {
      const err =
        e instanceof OpError
          ? e
          : new OpError(
              'Internal',
              `internal error in ${method}: ${e instanceof Error ? e.message : String(e)}`,
            );
      // dbus-next's typings say string; it takes the call message, as its own code does
      const reply = (dbus.Message.newError as unknown as (m: Message, name: string, text: string) => Message)(
        msg,
        ERROR_NAME_PREFIX + err.code,
        JSON.stringify(err.toPayload()),
      );
      this.o.bus.send(reply);
    }
  }

  private async run(msg: Message, method: MethodName): Promise<unknown> {
    // A call of the wrong signature is refused before authorisation and not audited: it changes
    // nothing and learns nothing the published introspection does not say, and auditing it would let
    // any bus user append entries to the log without bound.
    if (msg.signature !== 's' || typeof msg.body[0] !== 'string') {
      throw new OpError(
        'InvalidArgument',
        `${method} takes one JSON string (signature "s"), got "${msg.signature}"`,
      );
    }
    const body = msg.body[0];
    const { uid, pid } = await callerCredentials(this.o.bus, msg.sender);
    const caller: Caller = {
      sender: msg.sender,
      uid,
      pid,
      interactive: (msg.flags & ALLOW_INTERACTIVE_AUTHORIZATION) !== 0,
    };
    const detailsOf = this.o.authorizationDetails?.[method] as
      ((req: unknown) => Record<string, string>) | undefined;
    // Where polkit needs details of the request, the request is read first; elsewhere nothing of it is
    // looked at before the caller is authorised.
    let parsed: { request: unknown; client?: string } | undefined;
    if (detailsOf !== undefined) parsed = parseManager1Request(body, method);
    const actor = await this.authorizeCaller(caller, method, detailsOf?.(parsed?.request));
    parsed ??= parseManager1Request(body, method);
    const request = parsed.request;
    if (parsed.client !== undefined) actor.client = parsed.client;
    const handler = this.o.handlers[method] as (
      req: unknown,
      actor: AuditActor,
    ) => Promise<unknown> | unknown;
    return await handler(request, actor);
  }

  /** polkit's answer for this caller and method; a refusal is audited and thrown. */
  private async authorizeCaller(
    caller: Caller,
    method: MethodName,
    details: Record<string, string> | undefined,
  ): Promise<AuditActor> {
    const decision = await this.o.authority.authorize(caller, Manager1[method].action, details);
    const actor: AuditActor = { uid: caller.uid, subject: caller.sender, action: decision.actionId };
    if (!decision.allowed) {
      this.o.onDenied(actor, method, decision.reason);
      throw new OpError('NotAuthorized', `not authorised: ${decision.actionId} (${decision.reason})`);
    }
    return actor;
  }
}

/**
 * A Manager1 request as the core reads it (a JSON string from any bus user): validated by the method's
 * schema, its client label taken out; every refusal is InvalidArgument naming the pointer.
 */
export function parseManager1Request(
  body: string,
  method: MethodName,
): { request: unknown; client?: string } {
  // refused before parsing: JSON.parse of a huge body costs the core many times its size in memory
  if (body.length > MAX_REQUEST_CHARS) {
    throw new OpError(
      'InvalidArgument',
      `${method}: request of ${body.length} characters is larger than the ${MAX_REQUEST_CHARS} a request may be`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (e) {
    throw new OpError(
      'InvalidArgument',
      `${method}: request is not JSON: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  const labelled = takeClientLabel(raw);
  if ('error' in labelled) {
    throw new OpError('InvalidArgument', `${method} request: ${labelled.error}`, { pointer: '/client' });
  }
  const parsed = Manager1[method].request.safeParse(labelled.request);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const pointer = issue === undefined ? '' : issuePointer('', issue);
    throw new OpError('InvalidArgument', `${method} request: ${issue?.message ?? 'invalid'}`, { pointer });
  }
  return labelled.client === undefined
    ? { request: parsed.data }
    : { request: parsed.data, client: labelled.client };
}
