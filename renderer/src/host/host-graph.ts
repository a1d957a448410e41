import type { Plan, QueryResponse } from '../../../main/common/contract/index.js';

// The host as one picture: containers (lxc), the bridges they sit on (net, or only named by a
// container), the OpenFlow policies that cover them (openflow), and the WireGuard interfaces with
// the peers they reach (wireguard), from the plugins' current state; the plan's changes marked on
// the nodes they touch. Sections are read defensively: a plugin that is absent, or a shape this
// code does not know, adds nothing rather than breaking the picture.

export type GraphNodeKind = 'container' | 'bridge' | 'port' | 'wireguard' | 'peer';

export interface GraphNode {
  id: string;
  kind: GraphNodeKind;
  label: string;
  detail: string;
  /** The plugin and resource this node is, for the editor and the plan (click). */
  plugin: string;
  resource: string;
  /** running, stopped, … where the plugin says. */
  state?: string;
  /** The plan's action on this resource, where the current plan changes it. */
  change?: string;
  /** Policies (openflow) that cover it. */
  policies: string[];
  x: number;
  y: number;
}

export interface GraphEdge {
  from: string;
  to: string;
  kind: 'attached' | 'port' | 'peer';
}

export interface HostGraph {
  nodes: GraphNode[];
  edges: GraphEdge[];
  width: number;
  height: number;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** The current state of each plugin the query returned (a failed plugin: absent). */
function sections(query: QueryResponse | undefined): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const p of query?.plugins ?? []) if (p.state !== undefined) out.set(p.plugin, p.state);
  return out;
}

/** plugin → resource id → action, from the plan's diffs (no-ops left out). */
function planChanges(plan: Plan | undefined): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  for (const d of plan?.diffs ?? []) {
    const byId = new Map<string, string>();
    for (const r of d.resources) if (r.action !== 'noop') byId.set(r.id, r.action);
    out.set(d.plugin, byId);
  }
  return out;
}

const COL = 150;
const ROW = 110;
const MARGIN = 60;

export function hostGraph(query: QueryResponse | undefined, plan: Plan | undefined): HostGraph {
  const state = sections(query);
  const changes = planChanges(plan);
  const changeOf = (plugin: string, resource: string): string | undefined =>
    changes.get(plugin)?.get(resource);
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const byId = new Map<string, GraphNode>();
  const add = (n: Omit<GraphNode, 'x' | 'y' | 'policies'> & { policies?: string[] }): GraphNode => {
    const existing = byId.get(n.id);
    if (existing !== undefined) return existing;
    const node: GraphNode = { ...n, policies: n.policies ?? [], x: 0, y: 0 };
    nodes.push(node);
    byId.set(node.id, node);
    return node;
  };

  // bridges and their ports (net)
  const net = state.get('net');
  for (const i of arr(isObj(net) ? net['interfaces'] : undefined)) {
    if (!isObj(i)) continue;
    const name = str(i['name']);
    const type = str(i['type']) ?? '';
    if (name === undefined || !/bridge/.test(type)) continue;
    const bridge = add({
      id: `bridge:${name}`,
      kind: 'bridge',
      label: name,
      detail: type,
      plugin: 'net',
      resource: name,
      ...((c) => (c === undefined ? {} : { change: c }))(changeOf('net', name)),
    });
    for (const p of arr(i['ports'])) {
      const port = str(p) ?? (isObj(p) ? str(p['name']) : undefined);
      if (port === undefined) continue;
      add({
        id: `port:${port}`,
        kind: 'port',
        label: port,
        detail: `port of ${name}`,
        plugin: 'net',
        resource: name,
      });
      edges.push({ from: `port:${port}`, to: bridge.id, kind: 'port' });
    }
  }

  // containers (lxc), each on the bridge it names
  const lxc = state.get('lxc');
  for (const c of arr(isObj(lxc) ? lxc['containers'] : undefined)) {
    if (!isObj(c)) continue;
    const id = str(c['id']);
    if (id === undefined) continue;
    const props = isObj(c['properties']) ? c['properties'] : {};
    const hostname = str(props['hostname']);
    const run = str(c['state']) ?? str(props['state']);
    const node = add({
      id: `container:${id}`,
      kind: 'container',
      label: `${id}${hostname !== undefined ? ` ${hostname}` : ''}`,
      detail: [
        str(c['veth']),
        str(props['memory']) && `${str(props['memory'])} MB`,
        str(props['cores']) && `${str(props['cores'])} cores`,
      ]
        .filter(Boolean)
        .join(' · '),
      plugin: 'lxc',
      resource: id,
      ...(run !== undefined ? { state: run } : {}),
      ...((ch) => (ch === undefined ? {} : { change: ch }))(changeOf('lxc', id)),
    });
    const bridge = str(c['bridge']);
    if (bridge !== undefined) {
      add({
        id: `bridge:${bridge}`,
        kind: 'bridge',
        label: bridge,
        detail: 'named by a container',
        plugin: 'net',
        resource: bridge,
      });
      edges.push({ from: node.id, to: `bridge:${bridge}`, kind: 'attached' });
    }
  }
  // containers the plan creates (not in the current state yet)
  for (const [resource, action] of changes.get('lxc') ?? []) {
    if (!byId.has(`container:${resource}`)) {
      add({
        id: `container:${resource}`,
        kind: 'container',
        label: resource,
        detail: 'planned',
        plugin: 'lxc',
        resource,
        change: action,
      });
    }
  }

  // OpenFlow policies over containers
  const of = state.get('openflow');
  for (const p of arr(isObj(of) ? of['flow_policies'] : undefined)) {
    if (!isObj(p)) continue;
    const name = str(p['name']) ?? str(p['selector']) ?? 'policy';
    const selector = str(p['selector']) ?? '';
    for (const n of nodes) {
      if (n.kind !== 'container') continue;
      if (selector === 'container:*' || selector === `container:${n.resource}`) n.policies.push(name);
    }
  }

  // WireGuard interfaces and their peers
  const wg = state.get('wireguard');
  const interfaces = isObj(wg) && isObj(wg['interfaces']) ? wg['interfaces'] : {};
  for (const [ifname, spec] of Object.entries(interfaces)) {
    if (!isObj(spec)) continue;
    const iface = add({
      id: `wg:${ifname}`,
      kind: 'wireguard',
      label: ifname,
      detail: [
        str(spec['listen_port']) && `:${str(spec['listen_port'])}`,
        arr(spec['address']).map(String).join(', '),
      ]
        .filter(Boolean)
        .join(' '),
      plugin: 'wireguard',
      resource: ifname,
      ...((ch) => (ch === undefined ? {} : { change: ch }))(changeOf('wireguard', ifname)),
    });
    for (const peer of arr(spec['peers'])) {
      if (!isObj(peer)) continue;
      const key = str(peer['public_key']) ?? '?';
      const label = str(peer['name']) ?? `${key.slice(0, 8)}…`;
      const node = add({
        id: `peer:${ifname}:${key}`,
        kind: 'peer',
        label,
        detail: [str(peer['endpoint']), arr(peer['allowed_ips']).map(String).join(', ')]
          .filter(Boolean)
          .join(' · '),
        plugin: 'wireguard',
        resource: ifname,
      });
      edges.push({ from: iface.id, to: node.id, kind: 'peer' });
    }
  }

  return layout(nodes, edges);
}

/**
 * Bridges in one row; above each, the containers on it; below, its ports; WireGuard interfaces to
 * the right with their peers below them. Columns are shared so that no two nodes overlap.
 */
function layout(nodes: GraphNode[], edges: GraphEdge[]): HostGraph {
  const bridges = nodes.filter((n) => n.kind === 'bridge');
  const onBridge = (b: GraphNode, kind: GraphNodeKind, dir: 'from' | 'to'): GraphNode[] =>
    edges
      .filter(
        (e) => e.to === b.id && nodes.find((n) => n.id === e[dir === 'from' ? 'from' : 'to'])?.kind === kind,
      )
      .map((e) => nodes.find((n) => n.id === e.from) as GraphNode);
  let col = 0;
  const containerRows = 3;
  for (const b of bridges) {
    const containers = onBridge(b, 'container', 'from');
    const ports = onBridge(b, 'port', 'from');
    const width = Math.max(1, Math.ceil(containers.length / containerRows), ports.length);
    b.x = MARGIN + (col + (width - 1) / 2) * COL;
    b.y = MARGIN + containerRows * ROW;
    containers.forEach((c, i) => {
      c.x = MARGIN + (col + Math.floor(i / containerRows)) * COL;
      c.y = MARGIN + (containerRows - 1 - (i % containerRows)) * ROW;
    });
    ports.forEach((p, i) => {
      p.x = MARGIN + (col + i) * COL;
      p.y = b.y + ROW;
    });
    col += width;
  }
  // containers on no bridge
  const loose = nodes.filter(
    (n) => n.kind === 'container' && !edges.some((e) => e.from === n.id && e.kind === 'attached'),
  );
  loose.forEach((c, i) => {
    c.x = MARGIN + (col + Math.floor(i / 3)) * COL;
    c.y = MARGIN + (i % 3) * ROW;
  });
  if (loose.length > 0) col += Math.ceil(loose.length / 3);
  for (const w of nodes.filter((n) => n.kind === 'wireguard')) {
    const peers = edges
      .filter((e) => e.from === w.id)
      .map((e) => nodes.find((n) => n.id === e.to) as GraphNode);
    const width = Math.max(1, peers.length);
    w.x = MARGIN + (col + (width - 1) / 2) * COL;
    w.y = MARGIN + ROW;
    peers.forEach((p, i) => {
      p.x = MARGIN + (col + i) * COL;
      p.y = MARGIN + 2.4 * ROW;
    });
    col += width;
  }
  const maxY = Math.max(0, ...nodes.map((n) => n.y)); // the lowest node; a node is 46 px high
  return {
    nodes,
    edges,
    width: Math.max(320, MARGIN * 2 + Math.max(col - 1, 0) * COL),
    height: maxY + 46 + MARGIN / 2,
  };
}
