import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../../main/common/contract/index.js';
import { canonicalise, fromDumpFlows } from '../../plugins/openflow/flows.js';
import { documentOf, dumpFlows, host, Peer, vsctlGet } from '../support/ovs.js';
import { ROOT, TestSandbox, writeDocument } from '../support/sandbox.js';
import { LxcReader, TEMPLATE } from './lxc-support.js';

// The openflow plugin on the development host's real ovs-vswitchd (userspace datapath, in the
// host's netns, where the core runs). Two network namespaces attached to br0 by veth pairs ping each
// other through it; every change is read back with ovs-ofctl -O OpenFlow14 dump-flows and ovs-vsctl.
let sb: TestSandbox;
let docs: string;
let a: Peer;
let b: Peer;
let lxc: LxcReader;
const COOKIE = 'cookie=0x4f50444255530001';
const FIXTURES = join(ROOT, '../shared/fixtures/original-examples');

const netSection = {
  interfaces: [
    { name: 'br0', type: 'ovs-bridge', ports: ['va', 'vb'] },
    { name: 'ctl0', type: 'ovs-bridge' },
  ],
};
const withFlows = (flows: unknown[], extra: Record<string, unknown> = {}): string =>
  documentOf({ net: netSection, openflow: { bridges: [{ name: 'br0', flows }], ...extra } });
const plan = (name: string, doc: string): Plan => {
  const r = sb.cli(['plan', writeDocument(docs, name, doc), '--json']);
  expect(r.code, r.stderr).not.toBe(1);
  return JSON.parse(r.stdout) as Plan;
};
const apply = (name: string, doc: string): void => {
  const r = sb.cli(['apply', writeDocument(docs, name, doc), '--yes', '--json']);
  expect(r.code, r.stderr + r.stdout).toBe(0);
};
const ours = (bridge = 'br0'): string[] => dumpFlows(sb, bridge, `${COOKIE}/-1`);
const ofport = (name: string): string => vsctlGet(sb, 'Interface', name, 'ofport');
const resources = (p: Plan, plugin: string) => p.diffs.find((d) => d.plugin === plugin)?.resources ?? [];

beforeAll(async () => {
  sb = await TestSandbox.start();
  lxc = new LxcReader(sb);
  const base = join(sb.dir, '..');
  docs = join(base, 'docs');
  const netns = sb.env['OP_DBUS_NETNS'] ?? '';
  a = Peer.create(netns, 'va', '10.77.0.1/24');
  b = Peer.create(netns, 'vb', '10.77.0.2/24');
  apply('net.json', documentOf({ net: netSection }));
});
afterAll(async () => {
  a?.remove();
  b?.remove();
  await sb?.stop();
}, 120_000);

describe('flows on a real switch between two network namespaces', () => {
  it('our drop flow stops their ping, and removing it from the document restores it; ovs-ofctl sees each change', () => {
    expect(a.pings('10.77.0.2')).toBe(true);
    const drop = { table: 0, priority: 100, match_fields: { in_port: 'va' }, actions: [{ type: 'drop' }] };
    apply('drop.json', withFlows([drop]));
    expect(ours()).toEqual([`${COOKIE}, priority=100,in_port=${ofport('va')} actions=drop`]);
    expect(a.pings('10.77.0.2', 2)).toBe(false);
    apply('drop.json', withFlows([]));
    expect(ours()).toEqual([]);
    expect(dumpFlows(sb, 'br0')).toEqual(['priority=0 actions=NORMAL']); // the switch's own flow, never ours
    expect(a.pings('10.77.0.2')).toBe(true);
  });

  it('a flow added by hand with another cookie survives our apply and our prune', () => {
    host(
      sb,
      'ovs-ofctl',
      '-O',
      'OpenFlow14',
      'add-flow',
      'br0',
      'cookie=0x99,priority=50,ip,nw_dst=10.77.0.99,actions=drop',
    );
    const theirs = 'cookie=0x99, priority=50,ip,nw_dst=10.77.0.99 actions=drop';
    apply(
      'mixed.json',
      withFlows([
        { priority: 50, match_fields: { ip: true, nw_dst: '10.77.0.98' }, actions: [{ type: 'drop' }] },
      ]),
    );
    expect(dumpFlows(sb, 'br0')).toContain(theirs);
    expect(ours()).toEqual([`${COOKIE}, priority=50,ip,nw_dst=10.77.0.98 actions=drop`]);
    apply('mixed.json', withFlows([]));
    expect(ours()).toEqual([]);
    expect(dumpFlows(sb, 'br0')).toEqual([theirs, 'priority=0 actions=NORMAL']);
    host(sb, 'ovs-ofctl', '-O', 'OpenFlow14', 'del-flows', 'br0', 'cookie=0x99/-1');
  });

  it('re-plan after apply has no change, for every action type the plugin accepts', () => {
    host(sb, 'ovs-ofctl', '-O', 'OpenFlow14', 'add-group', 'br0', 'group_id=5,type=all,bucket=output:LOCAL');
    const every = [
      { priority: 1, actions: [{ type: 'drop' }] },
      { priority: 2, match_fields: { in_port: 'va' }, actions: [{ type: 'normal' }] },
      { priority: 3, match_fields: { in_port: 'vb' }, actions: [{ type: 'flood' }] },
      {
        priority: 4,
        match_fields: { dl_vlan: 4 },
        actions: [
          { type: 'output', port: 'vb' },
          { type: 'output', port: 'LOCAL' },
        ],
      },
      { priority: 5, match_fields: { dl_vlan: 5 }, actions: [{ type: 'controller' }] },
      { priority: 6, match_fields: { dl_vlan: 6 }, actions: [{ type: 'controller', max_len: 128 }] },
      { priority: 7, match_fields: { dl_vlan: 7 }, actions: [{ type: 'resubmit', table: 3 }] },
      { priority: 8, match_fields: { dl_vlan: 8 }, actions: [{ type: 'resubmit', port: 'va', table: 3 }] },
      { priority: 9, match_fields: { dl_vlan: 9 }, actions: [{ type: 'goto_table', table: 4 }] },
      {
        priority: 10,
        match_fields: { dl_vlan: 10 },
        actions: [{ type: 'load_register', register: 3, value: 77 }],
      },
      {
        priority: 11,
        match_fields: { dl_vlan: 11 },
        actions: [{ type: 'set_field', field: 'reg2', value: '0x5' }],
      },
      { priority: 12, match_fields: { dl_vlan: 12 }, actions: [{ type: 'mod_vlan_vid', vlan: 20 }] },
      { priority: 13, match_fields: { dl_vlan: 13 }, actions: [{ type: 'strip_vlan' }] },
      { priority: 14, match_fields: { dl_vlan: 14 }, actions: [{ type: 'push_vlan' }] },
      { priority: 15, match_fields: { dl_vlan: 15 }, actions: [{ type: 'group', group_id: 5 }] },
      { priority: 16, match_fields: { ip: true }, actions: [{ type: 'ct', args: 'commit' }] },
      {
        priority: 17,
        match_fields: { tcp: true, tp_dst: 22 },
        actions: [{ type: 'raw', action: 'dec_ttl' }],
      },
      {
        table: 3,
        priority: 18,
        match_fields: { udp: true, nw_src: '10.0.0.0/8' },
        actions: [{ type: 'normal' }],
        idle_timeout: 600,
        hard_timeout: 900,
      },
      'table=4,priority=19,dl_type=0x0800,nw_dst=10.1.2.3/32,tp_dst=0x16,tcp,actions=output:va',
      'priority=20,reg0=5,actions=resubmit(,4)',
    ];
    const doc = withFlows(every);
    apply('every.json', doc);
    expect(ours()).toHaveLength(every.length);
    const again = plan('every.json', doc);
    expect(resources(again, 'openflow').filter((r) => r.action !== 'noop')).toEqual([]);
    expect(again.hasChanges).toBe(false);
    apply('every.json', withFlows([]));
  });

  it('a bundle the switch rejects (an action naming a missing group) leaves the table as it was and the apply rolls back net before it', () => {
    apply(
      'before.json',
      withFlows([{ priority: 30, match_fields: { ip: true }, actions: [{ type: 'normal' }] }]),
    );
    const table = dumpFlows(sb, 'br0');
    const doc = documentOf({
      net: {
        interfaces: [
          { name: 'br0', type: 'ovs-bridge', ports: ['va', 'vb', 'int9'] },
          { name: 'int9', type: 'ovs-internal' },
        ],
      },
      openflow: {
        bridges: [
          {
            name: 'br0',
            flows: [
              { priority: 31, match_fields: { arp: true }, actions: [{ type: 'normal' }] },
              { priority: 32, match_fields: { ip: true }, actions: [{ type: 'group', group_id: 77 }] },
            ],
          },
        ],
      },
    });
    const r = sb.cli(['apply', writeDocument(docs, 'rejected.json', doc), '--yes', '--json']);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/OFPBAC_BAD_OUT_GROUP/);
    expect(dumpFlows(sb, 'br0')).toEqual(table);
    // net had added int9 before openflow ran: rolled back
    expect(host(sb, 'ovs-vsctl', 'list-ports', 'br0').trim().split('\n').sort()).toEqual(['va', 'vb']);
    apply('before.json', withFlows([]));
  });
});

describe('LXC containers on an Open vSwitch bridge, and container policies on their ports', () => {
  // One document declares the OVS bridge br1 (net, with its address), two containers on it (lxc,
  // created from the host's busybox template and started by the core in the host's netns, where LXC
  // attaches their veths to br1 itself) and flows on their ports (openflow). Read back with
  // ovs-vsctl list-ports, lxc-ls, lxc-attach -- ip / ping, and ovs-ofctl dump-flows.
  const lanNet = {
    interfaces: [
      ...netSection.interfaces,
      { name: 'br1', type: 'ovs-bridge', ipv4: { address: ['10.78.0.1/24'] } },
    ],
  };
  const container = (id: string, veth: string, ip: string) => ({
    id,
    veth,
    bridge: 'br1',
    properties: {
      template: TEMPLATE,
      hostname: `ct${id}`,
      memory: 128,
      cores: 1,
      network_type: 'bridge',
      ip,
      gw: '10.78.0.1',
    },
  });
  const lxcSection = {
    containers: [container('100', 'vc100', '10.78.0.100/24'), container('101', 'vc101', '10.78.0.101/24')],
  };
  const policies = (
    JSON.parse(readFileSync(join(FIXTURES, 'openflow-state.json'), 'utf8')) as {
      plugins: { openflow: { flow_policies: { name: string; selector: string }[] } };
    }
  ).plugins.openflow.flow_policies;
  const stack = (openflow: Record<string, unknown>): string =>
    documentOf({ net: lanNet, lxc: lxcSection, openflow });
  const policyFlows = (ids: string[]): string[] =>
    ids
      .flatMap((id) => {
        const port = ofport(`vc${id}`);
        const reg = `0x${Number(id).toString(16)}`;
        return [
          `${COOKIE}, priority=200,in_port=${port} actions=load:${reg}->NXM_NX_REG0[],resubmit(,1)`,
          `${COOKIE}, table=1, priority=100,reg0=${reg},in_port=${port} actions=LOCAL`,
        ];
      })
      .sort();

  it("one apply: net makes the bridge, lxc creates and starts two containers on it, the container policies install their flows on the containers' ports", () => {
    apply('stack.json', stack({ flow_policies: policies }));
    const ls = lxc.ls();
    expect([ls['100']?.state, ls['101']?.state]).toEqual(['RUNNING', 'RUNNING']);
    expect(host(sb, 'ovs-vsctl', 'list-ports', 'br1').trim().split('\n').sort()).toEqual(['vc100', 'vc101']);
    expect(lxc.attach('100', 'ip', '-4', 'addr', 'show', 'eth0')).toMatch(/inet 10\.78\.0\.100\/24/);
    expect(lxc.attach('101', 'ip', '-4', 'addr', 'show', 'eth0')).toMatch(/inet 10\.78\.0\.101\/24/);
    expect(ours('br1').sort()).toEqual(policyFlows(['100', '101']));
    // the policies send the containers' traffic to the bridge's own port: they reach its address
    expect(lxc.pings('100', '10.78.0.1')).toBe(true);
    expect(lxc.pings('101', '10.78.0.1')).toBe(true);
    expect(plan('stack.json', stack({ flow_policies: policies })).hasChanges).toBe(false);
  }, 120_000);

  it("an openflow drop flow on a container's port stops its ping; removing it restores it; the other container's goes on", () => {
    const drop = { priority: 300, match_fields: { in_port: 'vc100' }, actions: [{ type: 'drop' }] };
    apply('stack.json', stack({ flow_policies: policies, bridges: [{ name: 'br1', flows: [drop] }] }));
    expect(ours('br1')).toContain(`${COOKIE}, priority=300,in_port=${ofport('vc100')} actions=drop`);
    expect(lxc.pings('100', '10.78.0.1', 2)).toBe(false);
    expect(lxc.pings('101', '10.78.0.1', 2)).toBe(true);
    apply('stack.json', stack({ flow_policies: policies }));
    expect(ours('br1').sort()).toEqual(policyFlows(['100', '101']));
    expect(lxc.pings('100', '10.78.0.1')).toBe(true);
  }, 60_000);

  it("a policy for one container by id keeps only its port's flows; no policies, none of ours (containers from the lxc plugin's query)", () => {
    const only101 = policies.map((p) => ({ ...p, selector: 'container:101' }));
    apply('policy.json', documentOf({ openflow: { flow_policies: only101 } }));
    expect(ours('br1').sort()).toEqual(policyFlows(['101']));
    const missing = policies.map((p) => ({ ...p, selector: 'container:999' }));
    const r = resources(
      plan('policy.json', documentOf({ openflow: { flow_policies: missing } })),
      'openflow',
    );
    expect(r.find((x) => x.id === 'policy:container_ingress')?.error).toBe(
      "container:999: no such container in the lxc plugin's state",
    );
    apply('policy.json', documentOf({ openflow: { flow_policies: [] } }));
    expect(ours('br1')).toEqual([]);
  });

  it('plans the original openflow-state.json unchanged: its missing bridge mesh is a clear per-resource error', () => {
    const text = readFileSync(join(FIXTURES, 'openflow-state.json'), 'utf8');
    const rs = resources(plan('openflow-state.json', text), 'openflow');
    expect(rs.find((r) => r.id === 'mesh')?.error).toBe(
      'bridge mesh: bridge mesh does not exist on this host (nor is it an ovs-bridge of the net section)',
    );
    // auto_discover_containers: its policies expand over the running containers, onto br1 where their ports are
    expect(rs.find((r) => r.id === 'br1')?.changes).toHaveLength(4);
    const r = sb.cli(['apply', writeDocument(docs, 'openflow-state.json', text), '--yes', '--json']);
    expect(r.code).toBe(1);
    expect(ours('br1')).toEqual([]);
    expect(ours()).toEqual([]);
  });

  it('sets controller_endpoint on the bridge through OVSDB, read back with ovs-vsctl get-controller', () => {
    const doc = documentOf({
      openflow: {
        controller_endpoint: 'tcp:127.0.0.1:6653',
        bridges: [{ name: 'ctl0', flows: [{ priority: 9, actions: [{ type: 'normal' }] }] }],
      },
    });
    apply('controller.json', doc);
    expect(host(sb, 'ovs-vsctl', 'get-controller', 'ctl0').trim()).toBe('tcp:127.0.0.1:6653');
    expect(ours('ctl0')).toEqual([`${COOKIE}, priority=9 actions=NORMAL`]);
    expect(plan('controller.json', doc).hasChanges).toBe(false);
  });
});

describe('the canonical form', () => {
  it('parse-flows brought to our form equals dump-flows brought to it, on 220 real flow strings', async () => {
    host(sb, 'ovs-vsctl', 'add-br', 'canon', '--', 'set', 'bridge', 'canon', 'datapath_type=netdev');
    const matches = [
      '',
      'in_port=1',
      'ip',
      'tcp,tp_dst=22',
      'udp,tp_src=0x35',
      'ip,nw_src=10.0.0.0/8',
      'ip,nw_dst=192.168.1.1/32',
      'dl_type=0x0806',
      'arp,arp_tpa=10.0.0.1',
      'dl_src=02:00:00:00:00:01',
      'dl_dst=ff:ff:ff:ff:ff:ff',
      'dl_vlan=10',
      'reg0=5',
      'reg1=0x10/0xf0',
      'metadata=0x1',
      'icmp,icmp_type=8',
      'ipv6,ipv6_src=fe80::1',
      'tcp6,tp_dst=443',
      'ct_state=+trk+new,ip',
      'vlan_tci=0x1000/0x1000',
    ];
    const actions = [
      '',
      'drop',
      'NORMAL',
      'output:2',
      'output:LOCAL',
      'resubmit(,3)',
      'load:5->NXM_NX_REG0[]',
      'set_field:7->reg1',
      'mod_vlan_vid:5',
      'push_vlan:0x8100',
      'set_field:02:00:00:00:00:09->eth_dst',
      'controller(max_len=128)',
    ];
    const flows: string[] = [];
    matches.forEach((m, i) =>
      actions.forEach((act, j) => {
        const n = i * actions.length + j;
        const table = n % 3 === 0 ? 'table=2,' : '';
        const timeouts = n % 7 === 0 ? 'idle_timeout=600,' : n % 11 === 0 ? 'hard_timeout=900,' : '';
        flows.push(`${table}${timeouts}priority=${1000 + n}${m === '' ? '' : `,${m}`},actions=${act}`);
      }),
    );
    expect(flows.length).toBeGreaterThanOrEqual(200);
    const file = writeDocument(docs, 'canon.flows', flows.map((f) => `cookie=0x77,${f}`).join('\n') + '\n');
    host(sb, 'ovs-ofctl', '-O', 'OpenFlow14', 'add-flows', 'canon', file);
    const dumped = new Map(
      dumpFlows(sb, 'canon', 'cookie=0x77/-1').map((l) => {
        const c = fromDumpFlows(l);
        return [/priority=(\d+)/.exec(c.text)?.[1] ?? '', c.text];
      }),
    );
    const ours2 = await canonicalise(flows);
    const mismatches = ours2
      .map((c, i) => ({ flow: flows[i], ours: c.text, ovs: dumped.get(String(1000 + i)) }))
      .filter((x) => x.ours !== x.ovs);
    expect(mismatches).toEqual([]);
  });
});
