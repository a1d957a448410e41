import dbus from 'dbus-next';
import type { z } from 'zod';
import {
  BUS_NAME,
  INTERFACE_NAME,
  OBJECT_PATH,
  Signals,
  type SignalName,
} from '../../common/contract/index.js';
import { callMethod, type Message, type MessageBus } from '../../common/dbus/calls.js';

const BUS_DAEMON = {
  destination: 'org.freedesktop.DBus',
  path: '/org/freedesktop/DBus',
  interface: 'org.freedesktop.DBus',
};
const OWNER_RULE = `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${BUS_NAME}'`;

type Listener = (payload: unknown) => void;

/**
 * The core's signals as this client receives them: only from the current owner of org.opdbus.Manager1.
 * Any bus user may send a signal to any other, naming any interface and member; the bus daemon sets the
 * sender, so a signal whose sender is not the name's owner (GetNameOwner, followed on NameOwnerChanged)
 * is dropped. The core sends its signals only to subscribers (Manager1.Subscribe), so this asks for them,
 * and asks a new owner again when the core is restarted.
 */
export class CoreSignals {
  private owner: string | undefined;
  private readonly listeners = new Map<SignalName, Set<Listener>>();
  private readonly onMessage = (msg: Message): void => this.received(msg);

  private constructor(
    private readonly bus: MessageBus,
    private readonly subscribe: (signals: SignalName[]) => Promise<unknown>,
  ) {}

  /** Watches the core's name on this bus; `subscribe` asks the core for the signals listened to. */
  static async watch(
    bus: MessageBus,
    subscribe: (signals: SignalName[]) => Promise<unknown>,
  ): Promise<CoreSignals> {
    const signals = new CoreSignals(bus, subscribe);
    bus.on('message', signals.onMessage);
    await callMethod(bus, { ...BUS_DAEMON, member: 'AddMatch', signature: 's', body: [OWNER_RULE] });
    // after the rule: an owner change from here on is seen, whatever GetNameOwner answers
    try {
      const [owner] = await callMethod(bus, {
        ...BUS_DAEMON,
        member: 'GetNameOwner',
        signature: 's',
        body: [BUS_NAME],
      });
      signals.owner ??= typeof owner === 'string' ? owner : undefined;
    } catch {
      // no core now (NameHasNoOwner): nothing is accepted until one takes the name
    }
    return signals;
  }

  /** Calls `listener` with each signal of this name from the core, checked against the contract. */
  async listen<S extends SignalName>(
    name: S,
    listener: (payload: z.output<(typeof Signals)[S]>) => void,
  ): Promise<() => void> {
    let set = this.listeners.get(name);
    if (set === undefined) this.listeners.set(name, (set = new Set()));
    set.add(listener as Listener);
    await this.subscribe([name]);
    return () => {
      set.delete(listener as Listener);
    };
  }

  close(): void {
    this.bus.removeListener('message', this.onMessage);
  }

  private received(msg: Message): void {
    if (msg.type !== dbus.MessageType.SIGNAL) return;
    if (msg.sender === BUS_DAEMON.destination && msg.member === 'NameOwnerChanged') {
      const [name, , newOwner] = msg.body as unknown[];
      if (name !== BUS_NAME) return;
      this.owner = typeof newOwner === 'string' && newOwner !== '' ? newOwner : undefined;
      // a new core knows no subscribers: ask it again for what is listened to
      const names = [...this.listeners].filter(([, set]) => set.size > 0).map(([n]) => n);
      if (this.owner !== undefined && names.length > 0) void this.subscribe(names).catch(() => undefined);
      return;
    }
    if (this.owner === undefined || msg.sender !== this.owner) return;
    if (msg.path !== OBJECT_PATH || msg.interface !== INTERFACE_NAME) return;
    if (!Object.hasOwn(Signals, msg.member)) return;
    const name = msg.member as SignalName;
    const text = msg.body[0];
    if (msg.signature !== 's' || typeof text !== 'string') return;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return;
    }
    const parsed = Signals[name].safeParse(raw);
    if (!parsed.success) return;
    for (const l of this.listeners.get(name) ?? []) l(parsed.data);
  }
}
