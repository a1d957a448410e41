import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../../main/common/contract/index.js';
import { documentOf, host, ip, vsctlGet } from '../support/ovs.js';
import { TestSandbox, writeDocument } from '../support/sandbox.js';

// The net plugin on the development host: a real ovsdb-server and ovs-vswitchd (userspace
// datapath) in the host's network namespace, where the core runs. Every change is read back with
// the tools a person uses: ovs-vsctl for OVS, `ip -json` for links, addresses and routes.
let sb: TestSandbox;
let docs: string;
let netns: string;
const FIXTURES = join(import.meta.dirname, '../../../shared/fixtures/original-examples');

const plan = (name: string, doc: string): Plan => {
  const r = sb.cli(['plan', writeDocument(docs, name, doc), '--json']);
  expect(r.code, r.stderr).not.toBe(1);
  return JSON.parse(r.stdout) as Plan;
};
const apply = (name: string, doc: string): void => {
  const r = sb.cli(['apply', writeDocument(docs, name, doc), '--yes', '--json']);
  expect(r.code, r.stderr + r.stdout).toBe(0);
};
const resources = (p: Plan, plugin: string) => p.diffs.find((d) => d.plugin === plugin)?.resources ?? [];
const ipJson = <T>(...args: string[]): T => JSON.parse(host(sb, 'ip', '-json', ...args)) as T;
const addresses = (dev: string): string[] =>
  ipJson<{ addr_info: { family: string; local: string; prefixlen: number }[] }[]>(
    'address',
    'show',
    'dev',
    dev,
  )
    .flatMap((a) => a.addr_info)
    .filter((a) => a.family === 'inet')
    .map((a) => `${a.local}/${a.prefixlen}`);
const defaultRoute = (): { gateway?: string; dev?: string } | undefined =>
  ipJson<{ gateway?: string; dev?: string }[]>('-4', 'route', 'show', 'default')[0];
const ports = (bridge: string): string[] =>
  host(sb, 'ovs-vsctl', 'list-ports', bridge).trim().split('\n').filter(Boolean).sort();

beforeAll(async () => {
  sb = await TestSandbox.start();
  docs = join(sb.dir, '..', 'docs');
  netns = sb.env['OP_DBUS_NETNS'] ?? '';
  // host interfaces to attach: veth pairs inside the host's namespace (gone with it)
  for (const p of ['p1', 'p2', 'p3', 'p4', 'p5', 'p6']) {
    const r = ip('-n', netns, 'link', 'add', p, 'type', 'veth', 'peer', 'name', `${p}x`);
    expect(r.code, r.stderr).toBe(0);
  }
});
afterAll(async () => {
  await sb?.stop();
});

describe('the original examples', () => {
  it("plans example-state.json's net section unchanged, with a per-resource error for its uplink ens1, and an apply of it changes nothing", () => {
    const original = JSON.parse(readFileSync(join(FIXTURES, 'example-state.json'), 'utf8')) as {
      plugins: Record<string, unknown>;
    };
    const doc = documentOf({ net: original.plugins['net'] });
    const [ovsbr0] = resources(plan('example-net.json', doc), 'net');
    expect(ovsbr0).toMatchObject({ id: 'ovsbr0', action: 'create' });
    expect(ovsbr0?.error).toBe('ovs-bridge ovsbr0: port ens1 does not exist on this host');
    const r = sb.cli(['apply', writeDocument(docs, 'example-net.json', doc), '--yes', '--json']);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/port ens1 does not exist on this host/);
    expect(host(sb, 'ovs-vsctl', 'list-br').trim()).toBe('');
  });

  it("plans example-multi-container-state.json's net section: eno1 is the error, the mesh bridge is fine", () => {
    const original = JSON.parse(
      readFileSync(join(FIXTURES, 'example-multi-container-state.json'), 'utf8'),
    ) as {
      plugins: Record<string, unknown>;
    };
    const rs = resources(plan('multi-net.json', documentOf({ net: original.plugins['net'] })), 'net');
    expect(rs.find((r) => r.id === 'ovsbr0')?.error).toMatch(/port eno1 does not exist on this host/);
    expect(rs.find((r) => r.id === 'mesh')).toMatchObject({ action: 'create' });
    expect(rs.find((r) => r.id === 'mesh')?.error).toBeUndefined();
  });
});

const bridgeDoc = (o: { p1Tag: number; trunks: number[]; prune?: boolean }): string =>
  documentOf({
    net: {
      ...(o.prune !== undefined ? { prune: o.prune } : {}),
      interfaces: [
        {
          name: 'br0',
          type: 'ovs-bridge',
          ports: ['p1', 'int1', 'bond0', 'p4'],
          ipv4: {
            enabled: true,
            dhcp: false,
            address: [{ ip: '10.70.0.1', prefix: 24 }],
            gateway: '10.70.0.254',
          },
        },
        { name: 'int1', type: 'ovs-internal', tag: 10, ipv4: { address: ['10.71.0.1/24'] } },
        { name: 'bond0', type: 'ovs-bond', ports: ['p2', 'p3'], bond_mode: 'active-backup' },
        { name: 'p1', type: 'ovs-port', tag: o.p1Tag },
        { name: 'p4', type: 'ovs-port', trunks: o.trunks },
      ],
    },
  });

describe('Open vSwitch through OVSDB', () => {
  it('creates a netdev bridge with an access port, a trunk, a bond and a tagged internal interface; ovs-vsctl and ip see each; a re-plan has no change', () => {
    apply('bridge.json', bridgeDoc({ p1Tag: 30, trunks: [10, 20] }));
    expect(ports('br0')).toEqual(['bond0', 'int1', 'p1', 'p4']);
    expect(vsctlGet(sb, 'Bridge', 'br0', 'datapath_type')).toBe('netdev');
    expect(vsctlGet(sb, 'Port', 'p1', 'tag')).toBe('30');
    expect(vsctlGet(sb, 'Port', 'p4', 'trunks')).toBe('[10, 20]');
    expect(vsctlGet(sb, 'Port', 'int1', 'tag')).toBe('10');
    expect(vsctlGet(sb, 'Interface', 'int1', 'type')).toBe('internal');
    expect(vsctlGet(sb, 'Port', 'bond0', 'bond_mode')).toBe('active-backup');
    expect(
      host(sb, 'ovs-appctl', '-t', `${sb.env['OVS_RUNDIR'] ?? ''}/ovs-vswitchd.ctl`, 'bond/show', 'bond0'),
    ).toMatch(/member p2[\s\S]*member p3|member p3[\s\S]*member p2/);
    expect(addresses('br0')).toEqual(['10.70.0.1/24']);
    expect(addresses('int1')).toEqual(['10.71.0.1/24']);
    expect(defaultRoute()).toMatchObject({ gateway: '10.70.0.254', dev: 'br0' });
    expect(plan('bridge.json', bridgeDoc({ p1Tag: 30, trunks: [10, 20] })).hasChanges).toBe(false);
  });

  it('changes a tag and trunks in place, naming exactly those fields in the plan', () => {
    const doc = bridgeDoc({ p1Tag: 40, trunks: [20] });
    const changing = resources(plan('bridge.json', doc), 'net').filter((r) => r.action !== 'noop');
    expect(changing.flatMap((r) => r.changes.map((c) => [c.path, c.before, c.after]))).toEqual([
      ['/plugins/net/interfaces/3/tag', 30, 40],
      ['/plugins/net/interfaces/4/trunks', [10, 20], [20]],
    ]);
    apply('bridge.json', doc);
    expect(vsctlGet(sb, 'Port', 'p1', 'tag')).toBe('40');
    expect(vsctlGet(sb, 'Port', 'p4', 'trunks')).toBe('[20]');
    expect(plan('bridge.json', doc).hasChanges).toBe(false);
  });

  it('leaves a port added by hand alone, and removes it with prune; a bridge the document does not name stays', () => {
    host(sb, 'ovs-vsctl', 'add-port', 'br0', 'p5');
    host(sb, 'ovs-vsctl', 'add-br', 'other', '--', 'set', 'bridge', 'other', 'datapath_type=netdev');
    const keep = bridgeDoc({ p1Tag: 40, trunks: [20] });
    expect(plan('bridge.json', keep).hasChanges).toBe(false);
    const prune = bridgeDoc({ p1Tag: 40, trunks: [20], prune: true });
    const [br0] = resources(plan('prune.json', prune), 'net');
    expect(br0?.changes).toEqual([
      {
        path: '/plugins/net/interfaces/0/ports',
        before: ['bond0', 'int1', 'p1', 'p4', 'p5'],
        after: ['bond0', 'int1', 'p1', 'p4'],
      },
    ]);
    apply('prune.json', prune);
    expect(ports('br0')).toEqual(['bond0', 'int1', 'p1', 'p4']);
    expect(host(sb, 'ovs-vsctl', 'list-br').trim().split('\n').sort()).toEqual(['br0', 'other']);
  });

  it("converges after the bridge's addresses are flushed by hand: drift names them, converge puts address and gateway back", () => {
    host(sb, 'ip', 'address', 'flush', 'dev', 'br0');
    expect(addresses('br0')).toEqual([]);
    expect(defaultRoute()).toBeUndefined();
    const drift = sb.cli(['drift', '--json']);
    expect(drift.code).toBe(2);
    expect(drift.stdout).toMatch(/\/plugins\/net\/interfaces\/0\/ipv4\/address/);
    const c = sb.cli(['converge', '--json']);
    expect(c.code, c.stderr + c.stdout).toBe(0);
    expect(addresses('br0')).toEqual(['10.70.0.1/24']);
    expect(defaultRoute()).toMatchObject({ gateway: '10.70.0.254', dev: 'br0' });
  });
});

describe('Linux bridges through rtnetlink', () => {
  it('creates vmbr0 with a port and an address, read back with ip -json; a re-plan has no change', () => {
    const doc = documentOf({
      net: {
        interfaces: [
          { name: 'vmbr0', type: 'linux-bridge', ports: ['p6'], ipv4: { address: ['10.72.0.1/24'] } },
        ],
      },
    });
    apply('vmbr0.json', doc);
    const [link] = ipJson<{ linkinfo?: { info_kind?: string }; flags: string[] }[]>(
      '-details',
      'link',
      'show',
      'vmbr0',
    );
    expect(link?.linkinfo?.info_kind).toBe('bridge');
    expect(link?.flags).toContain('UP');
    const [p6] = ipJson<{ master?: string }[]>('link', 'show', 'p6');
    expect(p6?.master).toBe('vmbr0');
    expect(addresses('vmbr0')).toEqual(['10.72.0.1/24']);
    expect(plan('vmbr0.json', doc).hasChanges).toBe(false);
  });

  it('refuses what it cannot do per resource: DHCP, a VLAN tag on a Linux bridge, a port of no bridge', () => {
    const rs = resources(
      plan(
        'bad.json',
        documentOf({
          net: {
            interfaces: [
              { name: 'vmbr1', type: 'linux-bridge', tag: 5 },
              { name: 'br9', type: 'ovs-bridge', ipv4: { dhcp: true } },
              { name: 'lost0', type: 'ovs-internal' },
            ],
          },
        }),
      ),
      'net',
    );
    expect(rs.map((r) => r.error)).toEqual([
      'linux-bridge vmbr1: VLAN tag and trunks are managed on OVS ports only',
      'ovs-bridge br9: DHCP is not run by op-dbus: give the addresses (ipv4.address) or leave ipv4 out',
      'ovs-internal lost0: names no bridge (set "bridge", or list it in a bridge\'s ports)',
    ]);
  });
});
