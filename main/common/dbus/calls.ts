import dbus from 'dbus-next';
import { OpError } from '../contract/index.js';
import { systemBusAddress } from './system-bus.js';

export type MessageBus = dbus.MessageBus;
export type Message = dbus.Message;

/** A method call addressed in full; the names end up in any error it raises. */
export interface MethodCall {
  destination: string;
  path: string;
  interface: string;
  member: string;
  signature?: string;
  body?: unknown[];
  /** D-Bus header flags, e.g. 0x4 ALLOW_INTERACTIVE_AUTHORIZATION. */
  flags?: number;
  /** Milliseconds before the call fails; D-Bus itself waits 25 s, which is too long for an admin at a prompt. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;

/**
 * Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS, else the real one), failing fast when no bus
 * answers there, with what to do: a sentence of its own, unlike "no core on the bus".
 */
export async function connectSystemBus(address: string = systemBusAddress()): Promise<MessageBus> {
  return openBus(
    address,
    (why) =>
      `no D-Bus bus answers at ${address} (${why}): start the system bus, or point DBUS_SYSTEM_BUS_ADDRESS at a running one (\`eval "$(op-dbus sandbox up)"\` starts a development host and sets it)`,
  );
}

/** Connects to the bus at an address (the system bus, or the pkexec path's private bus). */
export async function connectBus(address: string): Promise<MessageBus> {
  return openBus(address, (why) => `cannot connect to the D-Bus bus at ${address}: ${why}`);
}

async function openBus(address: string, failure: (why: string) => string): Promise<MessageBus> {
  const bus = dbus.sessionBus({ busAddress: address });
  try {
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        bus.on('connect', () => resolve());
        bus.on('error', (e: unknown) => reject(e instanceof Error ? e : new Error(String(e))));
      }),
      5000,
      'connecting',
    );
  } catch (e) {
    bus.disconnect();
    throw new OpError('DBusCallFailed', failure(errorText(e)), { dbus: { service: 'org.freedesktop.DBus' } });
  }
  return bus;
}

/** Calls a method and returns the reply body; a D-Bus error or timeout becomes an OpError naming the call. */
export async function callMethod(bus: MessageBus, call: MethodCall): Promise<unknown[]> {
  const msg = new dbus.Message({
    destination: call.destination,
    path: call.path,
    interface: call.interface,
    member: call.member,
    signature: call.signature ?? '',
    body: call.body ?? [],
    flags: call.flags ?? 0,
  });
  const where = {
    dbus: { service: call.destination, path: call.path, interface: call.interface, member: call.member },
  };
  let abandon: (why: Error) => void = () => undefined;
  const abandoned = new Promise<never>((_, reject) => (abandon = reject));
  let pending = inFlight.get(bus);
  if (pending === undefined) inFlight.set(bus, (pending = new Set()));
  pending.add(abandon);
  try {
    const reply = await withTimeout(
      Promise.race([bus.call(msg), abandoned]),
      call.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      call.member,
    );
    return (reply?.body ?? []) as unknown[];
  } catch (e) {
    if (e instanceof dbus.DBusError) {
      throw new OpError('DBusCallFailed', `${call.destination} answered ${e.type}: ${e.text}`, where, {
        errorName: e.type,
        text: e.text,
      });
    }
    throw new OpError(
      'DBusCallFailed',
      `${call.interface}.${call.member} on ${call.destination}: ${errorText(e)}`,
      where,
    );
  } finally {
    pending.delete(abandon);
  }
}

/** Each connection's calls still waiting for their reply: what disconnectBus fails. */
const inFlight = new WeakMap<MessageBus, Set<(why: Error) => void>>();

/**
 * Disconnects and fails every call still waiting on this connection. dbus-next's disconnect() leaves
 * them pending, each holding its timer (up to the call's timeout, minutes for Apply): a process that
 * closed its connection would stay alive that long, and its callers would wait for nothing.
 */
export function disconnectBus(bus: MessageBus): void {
  bus.disconnect();
  const pending = inFlight.get(bus);
  if (pending === undefined) return;
  for (const abandon of [...pending])
    abandon(new Error('the connection to the bus was closed before the answer came'));
  pending.clear();
}

/** Reads every property of an interface as plain values (variants unwrapped). */
export async function getAllProperties(
  bus: MessageBus,
  destination: string,
  path: string,
  iface: string,
): Promise<Record<string, unknown>> {
  const [props] = await callMethod(bus, {
    destination,
    path,
    interface: 'org.freedesktop.DBus.Properties',
    member: 'GetAll',
    signature: 's',
    body: [iface],
  });
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(props as Record<string, dbus.Variant>)) out[k] = v.value;
  return out;
}

/** Whether a name is owned now or can be started by the bus. */
export async function nameReachable(bus: MessageBus, name: string): Promise<boolean> {
  const dbusCall = {
    destination: 'org.freedesktop.DBus',
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
  };
  const [owned] = await callMethod(bus, {
    ...dbusCall,
    member: 'NameHasOwner',
    signature: 's',
    body: [name],
  });
  if (owned === true) return true;
  const [activatable] = await callMethod(bus, { ...dbusCall, member: 'ListActivatableNames' });
  return Array.isArray(activatable) && activatable.includes(name);
}

/**
 * Who is behind a unique bus name, as the bus daemon vouches: uid and pid in one round trip
 * (GetConnectionCredentials); null where the daemon does not say.
 */
export async function callerCredentials(
  bus: MessageBus,
  sender: string,
): Promise<{ uid: number | null; pid: number | null }> {
  try {
    const [creds] = await callMethod(bus, {
      destination: 'org.freedesktop.DBus',
      path: '/org/freedesktop/DBus',
      interface: 'org.freedesktop.DBus',
      member: 'GetConnectionCredentials',
      signature: 's',
      body: [sender],
    });
    const c = (creds ?? {}) as Record<string, dbus.Variant>;
    const uid: unknown = c['UnixUserID']?.value;
    const pid: unknown = c['ProcessID']?.value;
    return { uid: typeof uid === 'number' ? uid : null, pid: typeof pid === 'number' ? pid : null };
  } catch {
    return { uid: null, pid: null };
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer to ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
