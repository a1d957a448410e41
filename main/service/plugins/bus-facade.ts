import { OpError } from '../../common/contract/index.js';
import {
  callMethod,
  connectSystemBus,
  getAllProperties,
  nameReachable,
  type Message,
  type MessageBus,
} from '../../common/dbus/calls.js';
import type { BusCall, BusSignal, PluginBus, PluginConnection, SignalMatch } from '../../sdk/index.js';
import type { DbusPermission } from './manifest.js';

const PROPERTIES = 'org.freedesktop.DBus.Properties';
const INTROSPECTABLE = 'org.freedesktop.DBus.Introspectable';
/** dbus-next's message type of a signal. */
const SIGNAL = 4;
// What a match rule may hold: the names are checked before they become part of one.
const BUS_NAME = /^[A-Za-z_-][A-Za-z0-9_-]*(\.[A-Za-z_-][A-Za-z0-9_-]*)+$/;
const INTERFACE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$/;
const MEMBER_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const OBJECT_PATH = /^\/$|^(\/[A-Za-z0-9_]+)+$/;

/** A call the facade refused, for the audit log (kind `plugin`). */
export interface RefusedCall {
  plugin: string;
  destination: string;
  path: string;
  interface: string;
  member: string;
  reason: string;
}

/**
 * The bus a plugin gets in its context: every call is checked against the plugin's declared
 * permissions before it leaves the core. A refused call never reaches the bus, throws an error that
 * names the plugin, the bus name and the member, and is reported for the audit log.
 */
export class PermissionedBus implements PluginBus {
  constructor(
    private readonly plugin: string,
    private readonly permissions: readonly DbusPermission[],
    private readonly bus: () => MessageBus,
    private readonly onRefused: (refused: RefusedCall) => void,
    /** Told of each allowed call that is not a read (an isolated plugin's calls are audited). */
    private readonly onAllowed?: (call: Omit<RefusedCall, 'reason'>) => void,
    private readonly connect: () => Promise<MessageBus> = () => connectSystemBus(),
  ) {}

  async call(call: BusCall): Promise<unknown[]> {
    this.check(call);
    const read =
      (call.interface === PROPERTIES && call.member !== 'Set') || call.interface === INTROSPECTABLE;
    if (!read) {
      this.onAllowed?.({
        plugin: this.plugin,
        destination: call.destination,
        path: call.path,
        interface: call.interface,
        member: call.member,
      });
    }
    return callMethod(this.bus(), call);
  }

  async getAll(destination: string, path: string, iface: string): Promise<Record<string, unknown>> {
    this.check({ destination, path, interface: PROPERTIES, member: 'GetAll', body: [iface] });
    return getAllProperties(this.bus(), destination, path, iface);
  }

  async reachable(name: string): Promise<boolean> {
    if (!this.permissions.some((p) => p.name === name)) {
      this.refuse(
        {
          destination: 'org.freedesktop.DBus',
          path: '/org/freedesktop/DBus',
          interface: 'org.freedesktop.DBus',
          member: 'NameHasOwner',
        },
        `${name} is not a bus name of its [permissions]`,
      );
    }
    return nameReachable(this.bus(), name);
  }

  async listen(match: SignalMatch, handler: (signal: BusSignal) => void): Promise<() => Promise<void>> {
    const call = {
      destination: match.sender,
      path: match.path ?? '/',
      interface: match.interface,
      member: match.member,
    };
    const reason = this.whySignalRefused(match);
    if (reason !== undefined) this.refuse(call, reason);
    const bus = this.bus();
    const [owner] = await callMethod(bus, {
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member: 'GetNameOwner',
      signature: 's',
      body: [match.sender],
    });
    const rule =
      `type='signal',sender='${match.sender}',interface='${match.interface}',member='${match.member}'` +
      (match.path !== undefined ? `,path='${match.path}'` : '');
    const onMessage = (msg: Message): void => {
      if (
        msg.type !== SIGNAL ||
        msg.sender !== owner ||
        msg.interface !== match.interface ||
        msg.member !== match.member ||
        (match.path !== undefined && msg.path !== match.path)
      )
        return;
      handler({
        path: msg.path ?? '',
        interface: msg.interface,
        member: msg.member,
        signature: msg.signature,
        body: msg.body as unknown[],
      });
    };
    bus.on('message', onMessage);
    const dbusCall = {
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      signature: 's',
      body: [rule],
    };
    try {
      await callMethod(bus, { ...dbusCall, member: 'AddMatch' });
    } catch (e) {
      bus.off('message', onMessage);
      throw e;
    }
    let stopped = false;
    return async () => {
      if (stopped) return;
      stopped = true;
      bus.off('message', onMessage);
      await callMethod(bus, { ...dbusCall, member: 'RemoveMatch' }).catch(() => undefined);
    };
  }

  async open(): Promise<PluginConnection> {
    const own = await this.connect();
    const bus = new PermissionedBus(
      this.plugin,
      this.permissions,
      () => own,
      this.onRefused,
      this.onAllowed,
      this.connect,
    );
    return Object.assign(bus, { close: () => own.disconnect() });
  }

  /** Why a signal subscription is refused, or undefined when an entry of its [permissions] allows it. */
  private whySignalRefused(match: SignalMatch): string | undefined {
    if (!BUS_NAME.test(match.sender)) return `${match.sender} is not a well-known bus name`;
    if (!INTERFACE_NAME.test(match.interface)) return `${match.interface} is not an interface name`;
    if (!MEMBER_NAME.test(match.member)) return `${match.member} is not a member name`;
    if (match.path !== undefined && !OBJECT_PATH.test(match.path))
      return `${match.path} is not an object path`;
    const onName = this.permissions.filter((p) => p.name === match.sender);
    if (onName.length === 0) return `${match.sender} is not a bus name of its [permissions]`;
    const entry = onName.find(
      (p) =>
        p.interface === match.interface &&
        (match.path === undefined ? p.paths === undefined : pathAllowed(p, match.path)),
    );
    if (entry === undefined)
      return `signals of ${match.interface}${match.path !== undefined ? ` at ${match.path}` : ''} are not in its [permissions] for ${match.sender}`;
    const signals = entry.signals ?? [];
    if (!signals.includes('*') && !signals.includes(match.member))
      return `signal ${match.member} is not among the signals its [permissions] allow on ${match.interface}`;
    return undefined;
  }

  /** Throws (and reports) unless some permission entry allows the call. */
  private check(call: BusCall): void {
    const reason = this.whyRefused(call);
    if (reason !== undefined) this.refuse(call, reason);
  }

  private whyRefused(call: BusCall): string | undefined {
    const onName = this.permissions.filter((p) => p.name === call.destination);
    if (onName.length === 0) return `${call.destination} is not a bus name of its [permissions]`;
    const onPath = onName.filter((p) => pathAllowed(p, call.path));
    if (onPath.length === 0)
      return `path ${call.path} is outside the paths its [permissions] allow on ${call.destination}`;
    if (call.interface === PROPERTIES) {
      const target = call.body?.[0];
      const write = call.member === 'Set';
      if (call.member !== 'Get' && call.member !== 'GetAll' && !write)
        return `${PROPERTIES}.${call.member} is not a property access`;
      if (typeof target !== 'string') return `${PROPERTIES}.${call.member} without an interface argument`;
      const entry = onPath.find((p) => p.interface === target);
      if (entry === undefined || entry.properties === 'none')
        return `properties of ${target} are not readable under its [permissions]`;
      if (write && entry.properties !== 'readwrite')
        return `properties of ${target} are read-only under its [permissions]`;
      return undefined;
    }
    if (call.interface === INTROSPECTABLE && call.member === 'Introspect') return undefined;
    const entry = onPath.find((p) => p.interface === call.interface);
    if (entry === undefined)
      return `interface ${call.interface} is not in its [permissions] for ${call.destination}`;
    if (!entry.methods.includes('*') && !entry.methods.includes(call.member)) {
      return `method ${call.member} is not among the methods its [permissions] allow on ${call.interface}`;
    }
    return undefined;
  }

  private refuse(call: Omit<BusCall, 'body'>, reason: string): never {
    const refused: RefusedCall = {
      plugin: this.plugin,
      destination: call.destination,
      path: call.path,
      interface: call.interface,
      member: call.member,
      reason,
    };
    this.onRefused(refused);
    throw new OpError(
      'PermissionDenied',
      `plugin ${this.plugin} may not call ${call.interface}.${call.member} on ${call.destination}: ${reason}`,
      {
        plugin: this.plugin,
        dbus: { service: call.destination, path: call.path, interface: call.interface, member: call.member },
      },
    );
  }
}

function pathAllowed(p: DbusPermission, path: string): boolean {
  if (p.paths === undefined) return true;
  return p.paths.some((allowed) =>
    allowed.endsWith('/*')
      ? path === allowed.slice(0, -2) || path.startsWith(allowed.slice(0, -1))
      : path === allowed,
  );
}
