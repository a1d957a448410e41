import type { ChildProcess } from 'node:child_process';
import { OpError } from '../common/contract/index.js';
import { callMethod, type MessageBus } from '../common/dbus/calls.js';
import { exitOf, sleep } from './processes.js';

// What the development host asks the bus daemon itself (org.freedesktop.DBus): who owns a name,
// with which PID, and what it can activate. Components use it to wait for and to check their services.

const POLL_MS = 50;

/** A call to the bus daemon, with a short timeout. */
export function callBusDaemon(
  bus: MessageBus,
  member: string,
  signature = '',
  body: unknown[] = [],
): Promise<unknown[]> {
  return callMethod(bus, {
    destination: 'org.freedesktop.DBus',
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
    member,
    signature,
    body,
    timeoutMs: 5_000,
  });
}

/** The unique name owning name, or undefined when it has none. */
export async function nameOwner(bus: MessageBus, name: string): Promise<string | undefined> {
  const [has] = await callBusDaemon(bus, 'NameHasOwner', 's', [name]);
  if (has !== true) return undefined;
  try {
    const [owner] = await callBusDaemon(bus, 'GetNameOwner', 's', [name]);
    return typeof owner === 'string' ? owner : undefined;
  } catch {
    // Released between the two calls.
    return undefined;
  }
}

/** The PID of the process owning name as the bus daemon saw it connect, or undefined when unowned. */
export async function ownerPid(bus: MessageBus, name: string): Promise<number | undefined> {
  const owner = await nameOwner(bus, name);
  if (owner === undefined) return undefined;
  try {
    const [pid] = await callBusDaemon(bus, 'GetConnectionUnixProcessID', 's', [owner]);
    return typeof pid === 'number' ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the bus owning name is the process we started: the name has an owner and the bus
 * daemon says that connection belongs to pid. A detail for `sandbox status` says what was found.
 */
export async function ownedBy(
  bus: MessageBus,
  name: string,
  pid: number | undefined,
): Promise<{ healthy: boolean; detail: string }> {
  const owner = await ownerPid(bus, name);
  if (owner === undefined) return { healthy: false, detail: `${name} has no owner` };
  if (pid === undefined) return { healthy: false, detail: `${name} is owned by PID ${owner}, not ours` };
  if (owner !== pid) return { healthy: false, detail: `${name} is owned by PID ${owner}, not ours (${pid})` };
  return { healthy: true, detail: `owns ${name}` };
}

/** Waits until name has an owner other than previousOwner; fails early when child exits. */
export async function waitForOwner(
  bus: MessageBus,
  name: string,
  child: ChildProcess,
  opts: { timeoutMs: number; previousOwner?: string; what: string; logTail: () => string },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const exit = exitOf(child);
    if (exit !== undefined) {
      throw new OpError(
        'Internal',
        `${opts.what} exited (${exit}) before owning ${name}; its log ends:\n${opts.logTail()}`,
      );
    }
    const owner = await nameOwner(bus, name);
    if (owner !== undefined && owner !== opts.previousOwner) return;
    if (Date.now() > deadline) {
      throw new OpError(
        'Internal',
        `${opts.what} did not own ${name} within ${opts.timeoutMs / 1000} s; its log ends:\n${opts.logTail()}`,
      );
    }
    await sleep(POLL_MS);
  }
}
