import { describe, expect, it } from 'vitest';
import type { Plan, QueryResponse } from '../../../main/common/contract/index.js';
import { hostGraph } from './host-graph.js';

const query = {
  plugins: [
    {
      plugin: 'net',
      version: '1',
      available: true,
      state: { interfaces: [{ name: 'ovsbr0', type: 'ovs-bridge', ports: ['eno1'] }] },
    },
    {
      plugin: 'lxc',
      version: '1',
      available: true,
      state: {
        containers: [
          {
            id: '100',
            veth: 'vi100',
            bridge: 'mesh',
            state: 'running',
            properties: { hostname: 'netmaker-node-1', memory: 1024 },
          },
          {
            id: '101',
            veth: 'vi101',
            bridge: 'ovsbr0',
            state: 'stopped',
            properties: { hostname: 'web-server' },
          },
        ],
      },
    },
    {
      plugin: 'openflow',
      version: '1',
      available: true,
      state: { flow_policies: [{ name: 'isolate', selector: 'container:101' }] },
    },
    {
      plugin: 'wireguard',
      version: '1',
      available: true,
      state: {
        interfaces: {
          wg0: {
            listen_port: 51820,
            address: ['10.8.0.1/24'],
            peers: [{ public_key: 'AbCdEfGhIjKlMnOp=', endpoint: '192.0.2.2:51820' }],
          },
        },
      },
    },
    { plugin: 'systemd', version: '1', available: false, reason: 'not here' },
  ],
} as unknown as QueryResponse;

const plan = {
  diffs: [
    {
      plugin: 'lxc',
      resources: [
        { id: '101', action: 'modify', changes: [] },
        { id: '102', action: 'create', changes: [] },
      ],
    },
  ],
} as unknown as Plan;

describe('the host graph', () => {
  it('puts each container on its bridge, marks policies and plan changes, and draws the mesh', () => {
    const g = hostGraph(query, plan);
    const node = (id: string) => g.nodes.find((n) => n.id === id);
    expect(g.nodes.map((n) => n.id).sort()).toEqual(
      [
        'bridge:mesh',
        'bridge:ovsbr0',
        'container:100',
        'container:101',
        'container:102',
        'peer:wg0:AbCdEfGhIjKlMnOp=',
        'port:eno1',
        'wg:wg0',
      ].sort(),
    );
    expect(g.edges).toContainEqual({ from: 'container:100', to: 'bridge:mesh', kind: 'attached' });
    expect(g.edges).toContainEqual({ from: 'container:101', to: 'bridge:ovsbr0', kind: 'attached' });
    expect(g.edges).toContainEqual({ from: 'port:eno1', to: 'bridge:ovsbr0', kind: 'port' });
    expect(g.edges).toContainEqual({ from: 'wg:wg0', to: 'peer:wg0:AbCdEfGhIjKlMnOp=', kind: 'peer' });
    expect(node('container:101')).toMatchObject({
      change: 'modify',
      policies: ['isolate'],
      state: 'stopped',
    });
    expect(node('container:102')).toMatchObject({ change: 'create', detail: 'planned' });
    expect(node('container:100')?.policies).toEqual([]);
    // no two nodes share a place
    const places = new Set(g.nodes.map((n) => `${n.x},${n.y}`));
    expect(places.size).toBe(g.nodes.length);
    for (const n of g.nodes) {
      expect(n.x).toBeGreaterThan(0);
      expect(n.x).toBeLessThan(g.width);
      expect(n.y).toBeLessThan(g.height);
    }
  });

  it('draws nothing for plugins that are absent or of an unknown shape', () => {
    const odd = {
      plugins: [{ plugin: 'lxc', version: '1', available: true, state: { containers: 'nope' } }],
    } as unknown as QueryResponse;
    expect(hostGraph(odd, undefined).nodes).toEqual([]);
    expect(hostGraph(undefined, undefined).nodes).toEqual([]);
  });
});
