import { readFileSync } from 'node:fs';
import dbus from 'dbus-next';
import type { Action } from '../../common/contract/index.js';
import { callMethod, nameReachable, type MessageBus } from '../../common/dbus/calls.js';

/** Who is calling: the unique bus name (the polkit subject) and the uid the bus daemon vouches for. */
export interface Caller {
  sender: string;
  uid: number | null;
  /** The caller's process, as the bus daemon knows it (needed where polkit cannot see the bus). */
  pid: number | null;
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
  /** details go to polkit as CheckAuthorization's details (rules read them with `action.lookup(key)`). */
  authorize(caller: Caller, action: Action, details?: Readonly<Record<string, string>>): Promise<Decision>;
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
 * How polkit is told who the caller is. On the system bus: the caller's unique bus name, which
 * polkitd resolves to the process and its session itself. On the pkexec path's private bus, which
 * polkitd cannot see: the caller's process (pid, start time, uid) as that bus daemon vouches for it;
 * the start time guards against a reused pid.
 */
export type SubjectKind = 'system-bus-name' | 'unix-process';

/** polkit's CheckAuthorization for every call; no answer from polkit is a refusal. */
export class PolkitAuthority implements Authority {
  constructor(
    private readonly systemBus: MessageBus,
    private readonly subjectKind: SubjectKind = 'system-bus-name',
  ) {}

  private subject(caller: Caller): [string, Record<string, dbus.Variant>] {
    if (this.subjectKind === 'system-bus-name') {
      return ['system-bus-name', { name: new dbus.Variant('s', caller.sender) }];
    }
    if (caller.pid === null || caller.uid === null) {
      throw new Error('the private bus did not say which process is calling');
    }
    return [
      'unix-process',
      {
        pid: new dbus.Variant('u', caller.pid),
        'start-time': new dbus.Variant('t', processStartTime(caller.pid)),
        uid: new dbus.Variant('i', caller.uid),
      },
    ];
  }

  async authorize(
    caller: Caller,
    action: Action,
    details: Readonly<Record<string, string>> = {},
  ): Promise<Decision> {
    const id = actionId(action);
    let result: unknown;
    try {
      [result] = await callMethod(this.systemBus, {
        ...POLKIT,
        member: 'CheckAuthorization',
        signature: '(sa{sv})sa{ss}us',
        body: [this.subject(caller), id, { ...details }, caller.interactive ? ALLOW_USER_INTERACTION : 0, ''],
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
    const [authorized, challenge, answer] = result as [boolean, boolean, Record<string, string>];
    if (authorized)
      return { allowed: true, actionId: id, reason: `polkit: ${answer['polkit.result'] ?? 'yes'}` };
    return {
      allowed: false,
      actionId: id,
      reason: challenge
        ? 'authentication is required: run in a terminal with a polkit agent (e.g. pkttyagent), or ask an administrator'
        : 'polkit says no',
    };
  }
}

/** Field 22 of /proc/PID/stat: the process's start time in clock ticks since boot. */
export function processStartTime(pid: number): bigint {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the command name (field 2) may contain spaces and parentheses: count fields after its last ')'
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return BigInt(fields[19] ?? '0');
}

/** polkit when it is on the bus (now or by activation), otherwise root only. */
export async function chooseAuthority(
  bus: MessageBus,
  subjectKind: SubjectKind = 'system-bus-name',
): Promise<Authority> {
  if (await nameReachable(bus, POLKIT.destination)) return new PolkitAuthority(bus, subjectKind);
  return new RootOnlyAuthority('polkit (org.freedesktop.PolicyKit1) is not on this bus');
}
