import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpError } from '../../common/contract/index.js';
import type { MessageBus } from '../../common/dbus/calls.js';
import { PermissionedBus, type RefusedCall } from './bus-facade.js';
import { parseManifest } from './manifest.js';
import { orderPlugins } from './order.js';
import { untrustedBecause } from './trust.js';

describe('plugin.toml', () => {
  it('reads the original format with our [permissions] and [limits], defaults filled in', () => {
    const m = parseManifest(
      `[plugin]
name = "net"
version = "1.2.0"
source = "hand-written"
dbus_service = "org.openvswitch"

[capabilities]
query = true

[dependencies]
plugins = ["lxc"]
packages = ["openvswitch-switch"]

[[permissions.dbus]]
name = "org.freedesktop.hostname1"
interface = "org.freedesktop.hostname1"
methods = ["SetStaticHostname"]

[limits]
deadline_s = 5

[metadata]
keywords = ["ovs"]
`,
      'net/plugin.toml',
    );
    expect(m.dependencies.plugins).toEqual(['lxc']);
    expect(m.limits.deadline_s).toBe(5);
    expect(m.plugin.entry).toBe('index.js');
    expect(m.permissions.dbus[0]).toMatchObject({ methods: ['SetStaticHostname'], properties: 'none' });
  });

  it('names the file, line and column of invalid TOML', () => {
    const e = (() => {
      try {
        parseManifest('[plugin]\nname = "x"\nversion = 1.0.0\n', 'x/plugin.toml');
      } catch (err) {
        return err as OpError;
      }
    })();
    expect(e).toBeInstanceOf(OpError);
    expect(e?.code).toBe('ParseError');
    expect(e?.where).toMatchObject({ file: 'x/plugin.toml', line: 3 });
  });

  it('names the key that breaks the schema, and refuses unknown keys', () => {
    expect(() => parseManifest('[plugin]\nname = "Bad Name"\nversion = "1.0.0"\n', 'f')).toThrow(
      /plugin\.name: lower-case/,
    );
    expect(() =>
      parseManifest('[plugin]\nname = "ok"\nversion = "1.0.0"\nshell = "rm -rf /"\n', 'f'),
    ).toThrow(/plugin: Unrecognized key/);
    expect(() => parseManifest('[plugin]\nname = "ok"\nversion = "1.0.0"\nentry = "../x.js"\n', 'f')).toThrow(
      /plugin\.entry/,
    );
  });
});

describe('order by after', () => {
  it('puts each plugin after its dependencies, keeps ties in the given order, and names cycles', () => {
    const r = orderPlugins([
      { name: 'openflow', after: ['lxc', 'net'] },
      { name: 'lxc', after: ['net'] },
      { name: 'net', after: [] },
      { name: 'a', after: ['b'] },
      { name: 'b', after: ['a'] },
      { name: 'c', after: ['a', 'missing'] },
    ]);
    expect(r.order).toEqual(['net', 'lxc', 'openflow']);
    expect(r.cycles.get('a')).toBe('dependency cycle: a → b → a');
    expect(r.cycles.get('c')).toMatch(/comes after a plugin on a dependency cycle \(a\)/);
    expect(r.missing.get('c')).toEqual(['missing']);
  });
});

describe('trust of plugin directories', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'opdbus-trust-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts root-owned, not group- or world-writable paths below a sticky /tmp', () => {
    const ok = join(dir, 'ok');
    mkdirSync(ok, { mode: 0o755 });
    expect(untrustedBecause(ok, 'directory')).toBeUndefined();
  });

  it('refuses writable, foreign-owned and symlinked paths, saying why', () => {
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o775);
    expect(untrustedBecause(open, 'directory')).toMatch(/writable by its group/);
    const foreign = join(dir, 'foreign');
    mkdirSync(foreign);
    chownSync(foreign, 65534, 65534);
    expect(untrustedBecause(foreign, 'directory')).toMatch(/owned by uid 65534, not root/);
    const file = join(dir, 'plugin.js');
    writeFileSync(file, '');
    chmodSync(file, 0o646);
    expect(untrustedBecause(file, 'file')).toMatch(/writable by every user/);
    const link = join(dir, 'link');
    symlinkSync(join(dir, 'ok'), link);
    expect(untrustedBecause(link, 'directory')).toMatch(/symbolic link/);
    // below a directory another user may write, even a trusted-looking file is not trusted
    const inside = join(open, 'x.js');
    writeFileSync(inside, '');
    expect(untrustedBecause(inside, 'file')).toMatch(/open is writable by its group/);
  });
});

describe('the permission-checked bus', () => {
  const refused: RefusedCall[] = [];
  // every call in these cases must be refused before it reaches a bus
  const noBus = (): MessageBus => {
    throw new Error('a refused call reached the bus');
  };
  const bus = new PermissionedBus(
    'snoop',
    [
      {
        name: 'org.freedesktop.hostname1',
        interface: 'org.freedesktop.hostname1',
        paths: ['/org/freedesktop/hostname1'],
        methods: ['SetLocation'],
        properties: 'read',
      },
    ],
    noBus,
    (r) => refused.push(r),
  );
  const call = {
    destination: 'org.freedesktop.hostname1',
    path: '/org/freedesktop/hostname1',
    interface: 'org.freedesktop.hostname1',
  };

  it.each([
    [{ ...call, member: 'SetStaticHostname' }, /method SetStaticHostname is not among/],
    [
      { ...call, destination: 'org.freedesktop.systemd1', member: 'StartUnit' },
      /org\.freedesktop\.systemd1 is not a bus name/,
    ],
    [{ ...call, path: '/elsewhere', member: 'SetLocation' }, /path \/elsewhere is outside/],
    [
      {
        ...call,
        interface: 'org.freedesktop.DBus.Properties',
        member: 'Set',
        body: ['org.freedesktop.hostname1'],
      },
      /read-only/,
    ],
    [
      {
        ...call,
        interface: 'org.freedesktop.DBus.Properties',
        member: 'GetAll',
        body: ['org.freedesktop.systemd1.Manager'],
      },
      /not readable/,
    ],
  ])('refuses %o', async (c, why) => {
    const e = (await bus.call(c).catch((err: unknown) => err)) as OpError;
    expect(e).toBeInstanceOf(OpError);
    expect(e.code).toBe('PermissionDenied');
    expect(e.message).toMatch(why);
    expect(e.message).toContain(`plugin snoop may not call ${c.interface}.${c.member} on ${c.destination}`);
    expect(e.where).toMatchObject({ plugin: 'snoop', dbus: { service: c.destination, member: c.member } });
    expect(refused.at(-1)).toMatchObject({ plugin: 'snoop', member: c.member });
  });

  it('refuses asking about a bus name outside its permissions', async () => {
    await expect(bus.reachable('org.freedesktop.PolicyKit1')).rejects.toMatchObject({
      code: 'PermissionDenied',
    });
  });
});
