import { callMethod, type Message, type MessageBus } from '../../common/dbus/calls.js';
import type { SignalName } from '../../common/contract/index.js';

const BUS_DAEMON = {
  destination: 'org.freedesktop.DBus',
  path: '/org/freedesktop/DBus',
  interface: 'org.freedesktop.DBus',
};

/** The match rule that tells the core when `name` leaves the bus. */
function vanishRule(name: string): string {
  return `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${name}'`;
}

/**
 * Who receives the core's signals: only the bus names that asked (Manager1.Subscribe, polkit action
 * `read`), each signal sent to each of them as a unicast signal. A broadcast would reach every bus user,
 * including those the read action refuses. A subscriber is dropped when its name leaves the bus; the bus
 * bounds how many names there are.
 */
export class SignalSubscribers {
  private readonly byName = new Map<string, Set<SignalName>>();
  private readonly onMessage = (msg: Message): void => {
    // only the bus daemon speaks for org.freedesktop.DBus: no client can send as it
    if (msg.sender !== BUS_DAEMON.destination || msg.member !== 'NameOwnerChanged') return;
    const [name, , newOwner] = msg.body as unknown[];
    if (typeof name === 'string' && newOwner === '' && this.byName.has(name)) this.drop(name);
  };

  constructor(private readonly bus: MessageBus) {
    bus.on('message', this.onMessage);
  }

  /** Adds signals for a unique bus name; returns every signal it now receives. */
  async add(name: string, signals: readonly SignalName[]): Promise<SignalName[]> {
    let held = this.byName.get(name);
    if (held === undefined) {
      held = new Set();
      this.byName.set(name, held);
      await callMethod(this.bus, {
        ...BUS_DAEMON,
        member: 'AddMatch',
        signature: 's',
        body: [vanishRule(name)],
      });
      // it may have left before the rule was in place; then NameOwnerChanged has gone by unseen
      const [owned] = await callMethod(this.bus, {
        ...BUS_DAEMON,
        member: 'NameHasOwner',
        signature: 's',
        body: [name],
      });
      if (owned !== true) {
        this.drop(name);
        return [];
      }
    }
    for (const s of signals) held.add(s);
    return [...held];
  }

  /** The names that receive this signal now. */
  recipients(signal: SignalName): string[] {
    const out: string[] = [];
    for (const [name, signals] of this.byName) if (signals.has(signal)) out.push(name);
    return out;
  }

  /** Stops watching the bus (the core is stopping). */
  close(): void {
    this.bus.removeListener('message', this.onMessage);
    this.byName.clear();
  }

  private drop(name: string): void {
    this.byName.delete(name);
    void callMethod(this.bus, {
      ...BUS_DAEMON,
      member: 'RemoveMatch',
      signature: 's',
      body: [vanishRule(name)],
    }).catch(() => undefined);
  }
}
