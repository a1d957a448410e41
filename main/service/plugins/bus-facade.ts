import { OpError } from '../../common/contract/index.js';
import { callMethod, getAllProperties, nameReachable, type MessageBus } from '../../common/dbus/calls.js';
import type { BusCall, PluginBus } from '../../sdk/index.js';
import type { DbusPermission } from './manifest.js';

const PROPERTIES = 'org.freedesktop.DBus.Properties';
const INTROSPECTABLE = 'org.freedesktop.DBus.Introspectable';

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
