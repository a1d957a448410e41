import { describe, expect, it } from 'vitest';
import { OpError } from '../../common/contract/index.js';
import type { MessageBus } from '../../common/dbus/calls.js';
import { PermissionedBus, type RefusedCall } from './bus-facade.js';

// Signal subscriptions go through the same permissions as calls: refused before anything reaches
// the bus (this bus throws if touched), named, and reported for the audit log.
describe('PermissionedBus.listen', () => {
  const refused: RefusedCall[] = [];
  const bus = new PermissionedBus(
    'units',
    [
      {
        name: 'org.freedesktop.systemd1',
        interface: 'org.freedesktop.systemd1.Manager',
        paths: ['/org/freedesktop/systemd1'],
        methods: ['StartUnit'],
        signals: ['JobRemoved'],
        properties: 'none',
      },
    ],
    (): MessageBus => {
      throw new Error('the bus must not be reached');
    },
    (r) => refused.push(r),
  );
  const ok = {
    sender: 'org.freedesktop.systemd1',
    interface: 'org.freedesktop.systemd1.Manager',
    member: 'JobRemoved',
    path: '/org/freedesktop/systemd1',
  };

  it.each([
    [{ ...ok, member: 'UnitNew' }, /signal UnitNew is not among the signals/],
    [{ ...ok, sender: 'org.freedesktop.hostname1' }, /org\.freedesktop\.hostname1 is not a bus name/],
    [{ ...ok, path: '/org/freedesktop/systemd1/unit/x' }, /are not in its \[permissions\]/],
    [{ ...ok, sender: "org.freedesktop.systemd1',eavesdrop='true" }, /not a well-known bus name/],
    [{ ...ok, member: "JobRemoved',sender='x" }, /not a member name/],
  ])('refuses %o', async (match, why) => {
    const e = (await bus.listen(match, () => undefined).catch((err: unknown) => err)) as OpError;
    expect(e).toBeInstanceOf(OpError);
    expect(e.code).toBe('PermissionDenied');
    expect(e.message).toMatch(why);
    expect(refused.at(-1)).toMatchObject({ plugin: 'units', member: match.member });
  });
});
