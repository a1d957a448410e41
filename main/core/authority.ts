import type { Action } from '../contract/index.js';

/** Who is calling: the unique bus name (the polkit subject) and the uid the bus daemon vouches for. */
export interface Caller {
  sender: string;
  uid: number | null;
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

/** Until polkit is wired in (the privilege issue): root may do everything, nobody else anything. */
export class RootOnlyAuthority implements Authority {
  authorize(caller: Caller, action: Action): Promise<Decision> {
    const actionId = `org.opdbus.${action}`;
    const allowed = caller.uid === 0;
    return Promise.resolve({
      allowed,
      actionId,
      reason: allowed ? 'caller is root' : `uid ${caller.uid ?? 'unknown'} is not root`,
    });
  }
}
