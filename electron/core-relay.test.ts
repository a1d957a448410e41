import { describe, expect, it } from 'vitest';
import { OpError, type MethodName } from '../main/contract/index.js';
import { relayCall, type CoreLink } from './core-relay.js';

function fakeCore(answer: (method: MethodName) => unknown): {
  link: () => Promise<CoreLink>;
  calls: MethodName[];
} {
  const calls: MethodName[] = [];
  const link: CoreLink = {
    call: (method) => {
      calls.push(method);
      return Promise.resolve().then(() => answer(method)) as never;
    },
    onProgress: () => Promise.resolve(() => undefined),
  };
  return { link: () => Promise.resolve(link), calls };
}

describe('relayCall', () => {
  it('forwards a valid call and returns its result as a value', async () => {
    const core = fakeCore(() => ({ schema: {} }));
    expect(await relayCall(core.link, 'Schema', {})).toEqual({ result: { schema: {} } });
    expect(core.calls).toEqual(['Schema']);
  });

  it('refuses unknown methods and invalid requests before the core sees them', async () => {
    const core = fakeCore(() => ({}));
    expect(await relayCall(core.link, 'constructor', {})).toMatchObject({
      error: { code: 'InvalidArgument' },
    });
    expect(await relayCall(core.link, 42, {})).toMatchObject({ error: { code: 'InvalidArgument' } });
    expect(await relayCall(core.link, 'Approve', { planId: 'p', hash: 'nope' })).toMatchObject({
      error: { code: 'InvalidArgument' },
    });
    expect(core.calls).toEqual([]);
  });

  it("returns the core's typed errors and a failed connection as readable payloads", async () => {
    const stale = fakeCore(() => {
      throw new OpError('StalePlan', 'plan again');
    });
    expect(await relayCall(stale.link, 'Apply', { planId: 'p', hash: 'a'.repeat(64) })).toEqual({
      error: { code: 'StalePlan', message: 'plan again' },
    });
    const down = (): Promise<CoreLink> =>
      Promise.reject(new OpError('DBusCallFailed', 'cannot connect to the system bus'));
    expect(await relayCall(down, 'Schema', {})).toEqual({
      error: { code: 'DBusCallFailed', message: 'cannot connect to the system bus' },
    });
  });
});
