import { describe, expect, it } from 'vitest';
import { OpError, type MethodName, type WitnessReport } from '../main/common/contract/index.js';
import { relayCall, type CoreLink, type LocalAnswers } from './core-relay.js';

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
    onSignal: () => Promise.resolve(() => undefined),
  };
  return { link: () => Promise.resolve(link), calls };
}

const FIRST: WitnessReport = {
  status: 'first-contact',
  endpoint: 'unix:path=/run/x',
  checkpoint: { size: 3, root: 'cm9vdA==', seenAt: '2026-01-01T00:00:00Z' },
};
const local: LocalAnswers = {
  witness: () => Promise.resolve(FIRST),
  verifyInclusion: (seq) => Promise.resolve({ seq, verified: false, reason: 'not in this test' }),
};

describe('relayCall', () => {
  it('forwards a valid call and returns its result as a value', async () => {
    const core = fakeCore(() => ({ schema: {} }));
    expect(await relayCall(core.link, 'Schema', {}, local)).toEqual({ result: { schema: {} } });
    expect(core.calls).toEqual(['Schema']);
  });

  it('forwards the plugin platform’s methods with their requests as validated', async () => {
    const seen: { method: MethodName; request: unknown }[] = [];
    const link: CoreLink = {
      call: (method, request) => {
        seen.push({ method, request });
        return Promise.resolve({}) as never;
      },
      onSignal: () => Promise.resolve(() => undefined),
    };
    const core = (): Promise<CoreLink> => Promise.resolve(link);
    const hash = 'a'.repeat(64);
    const calls: [MethodName, unknown][] = [
      ['Apply', { planId: 'p', hash, confirmIrreversible: ['alpha/gone'] }],
      ['Cancel', { planId: 'p' }],
      ['Drift', {}],
      ['Converge', { dryRun: true }],
      ['Converge', { confirmIrreversible: ['alpha/gone'] }],
      ['Plugins', {}],
    ];
    for (const [method, request] of calls) {
      expect(await relayCall(core, method, request, local)).toEqual({ result: {} });
    }
    expect(seen).toEqual(calls.map(([method, request]) => ({ method, request })));
    // a confirmation that is not a list of names never reaches the core
    expect(
      await relayCall(core, 'Apply', { planId: 'p', hash, confirmIrreversible: 'alpha/gone' }, local),
    ).toMatchObject({ error: { code: 'InvalidArgument' } });
    expect(seen).toHaveLength(calls.length);
  });

  it('refuses unknown methods and invalid requests before the core sees them', async () => {
    const core = fakeCore(() => ({}));
    expect(await relayCall(core.link, 'constructor', {}, local)).toMatchObject({
      error: { code: 'InvalidArgument' },
    });
    expect(await relayCall(core.link, 42, {}, local)).toMatchObject({ error: { code: 'InvalidArgument' } });
    expect(await relayCall(core.link, 'Approve', { planId: 'p', hash: 'nope' }, local)).toMatchObject({
      error: { code: 'InvalidArgument' },
    });
    expect(core.calls).toEqual([]);
  });

  it("returns the core's typed errors and a failed connection as readable payloads", async () => {
    const stale = fakeCore(() => {
      throw new OpError('StalePlan', 'plan again');
    });
    expect(await relayCall(stale.link, 'Apply', { planId: 'p', hash: 'a'.repeat(64) }, local)).toEqual({
      error: { code: 'StalePlan', message: 'plan again' },
    });
    const down = (): Promise<CoreLink> =>
      Promise.reject(new OpError('DBusCallFailed', 'cannot connect to the system bus'));
    expect(await relayCall(down, 'Schema', {}, local)).toEqual({
      error: { code: 'DBusCallFailed', message: 'cannot connect to the system bus' },
    });
  });

  it('answers Witness in the shell, never through the core, and refuses a request it does not take', async () => {
    const core = fakeCore(() => ({}));
    expect(await relayCall(core.link, 'Witness', {}, local)).toEqual({ result: FIRST });
    expect(await relayCall(core.link, 'Witness', { forget: true }, local)).toMatchObject({
      error: { code: 'InvalidArgument' },
    });
    const failing: LocalAnswers = { ...local, witness: () => Promise.reject(new Error('state dir gone')) };
    expect(await relayCall(core.link, 'Witness', {}, failing)).toEqual({
      error: { code: 'Internal', message: 'state dir gone' },
    });
    expect(core.calls).toEqual([]);
  });
});
