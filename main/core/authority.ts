import dbus from 'dbus-next';
import type { Action } from '../contract/index.js';
import { callMethod, type MessageBus } from '../dbus/calls.js';

/** Who is calling: the unique bus name (the polkit subject) and the uid the bus daemon vouches for. */
export interface Caller {
  sender: string;
  uid: number | null;
  /** The call carried ALLOW_INTERACTIVE_AUTHORIZATION: polkit may ask the user (through an agent). */
  interactive: boolean;
}

export interface Decision {
  allowed: boolean;
  /** The full action id, e.g. `org.opdbus.apply`. */
  actionId: string;
  reason: string;
}

/**
 * The one place where the core asks "may this caller do this". Every method goes through it
 * before it touches anything.
 */
export interface Authority {
  authorize(caller: Caller, action: Action): Promise<Decision>;
}

/** The polkit action id of one of our actions. */
export function actionId(action: Action): string {
  return `org.opdbus.${action}`;
}

/** Where polkit is not on the bus: root may do everything (as polkit itself decides), nobody else anything. */
export class RootOnlyAuthority implements Authority {
  constructor(private readonly why = 'polkit is not in use') {}

  authorize(caller: Caller, action: Action): Promise<Decision> {
    const allowed = caller.uid === 0;
    return Promise.resolve({
      allowed,
      actionId: actionId(action),
      reason: allowed ? 'caller is root' : `uid ${caller.uid ?? 'unknown'} is not root and ${this.why}`,
    });
  }
}

const POLKIT = {
  destination: 'org.freedesktop.PolicyKit1',
  path: '/org/freedesktop/PolicyKit1/Authority',
  interface: 'org.freedesktop.PolicyKit1.Authority',
};
const ALLOW_USER_INTERACTION = 0x1;

/**
 * polkit's CheckAuthorization with the caller's unique bus name as subject: polkit resolves the
 * name to the process and its session itself, so the core never trusts a pid or uid the caller claims.
 */
export class PolkitAuthority implements Authority {
  constructor(private readonly bus: MessageBus) {}

  async authorize(caller: Caller, action: Action): Promise<Decision> {
    const id = actionId(action);
    let result: unknown;
    try {
      [result] = await callMethod(this.bus, {
        ...POLKIT,
        member: 'CheckAuthorization',
        signature: '(sa{sv})sa{ss}us',
        body: [
          ['system-bus-name', { name: new dbus.Variant('s', caller.sender) }],
          id,
          {},
          caller.interactive ? ALLOW_USER_INTERACTION : 0,
          '',
        ],
        // an interactive check waits for the person at the agent's password prompt
        timeoutMs: caller.interactive ? 5 * 60_000 : 25_000,
      });
    } catch (e) {
      // fail closed: no answer from polkit is no
      return {
        allowed: false,
        actionId: id,
        reason: `polkit did not answer: ${e instanceof Error ? e.message : String(e)}`,
      };
    }
    const [authorized, challenge, details] = result as [boolean, boolean, Record<string, string>];
    if (authorized)
      return { allowed: true, actionId: id, reason: `polkit: ${details['polkit.result'] ?? 'yes'}` };
    return {
      allowed: false,
      actionId: id,
      reason: challenge
        ? 'authentication is required: run in a terminal with a polkit agent (e.g. pkttyagent), or ask an administrator'
        : 'polkit says no',
    };
  }
}

/** polkit when it is on the bus (now or by activation), otherwise root only. */
export async function chooseAuthority(bus: MessageBus): Promise<Authority> {
  const [owned] = await callMethod(bus, {
    destination: 'org.freedesktop.DBus',
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
    member: 'NameHasOwner',
    signature: 's',
    body: [POLKIT.destination],
  });
  if (owned === true) return new PolkitAuthority(bus);
  const [activatable] = await callMethod(bus, {
    destination: 'org.freedesktop.DBus',
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
    member: 'ListActivatableNames',
  });
  if (Array.isArray(activatable) && activatable.includes(POLKIT.destination)) return new PolkitAuthority(bus);
  return new RootOnlyAuthority('polkit (org.freedesktop.PolicyKit1) is not on this bus');
}
