import { pointer, type Change, type ResourceAction } from '../../main/sdk/index.js';
import { addressText, type Interface, type InterfaceType, type NetSection } from './model.js';
import type { OvsSnapshot } from './ovs-state.js';
import { namedUuid, set, uuid, type Operation } from './ovsdb.js';
import type { Link } from './rtnl.js';

// From a desired interface and what the host has, the changes a plan shows and the steps an apply
// runs: OVSDB operations (all interfaces in one transaction) and `ip` argument arrays. The same
// function serves diff, apply, verify and rollback, so what a plan says is what an apply does.

/** What the host has now: OVS (undefined when its database is unreachable), links, addresses, the default route. */
export interface Host {
  ovs: OvsSnapshot | undefined;
  ovsProblem?: string;
  links: Map<string, Link>;
  addresses: Map<string, string[]>;
  route: { gateway: string; dev: string } | undefined;
}

/** One interface of the document, normalised. `gateway: null` (only from a checkpoint) means "no default route through it". */
export interface Want {
  index: number;
  name: string;
  type: InterfaceType;
  bridge?: string;
  ports?: string[];
  tag?: number | null;
  trunks?: number[];
  bond_mode?: string | null;
  lacp?: string | null;
  ipv4?: { addresses: string[]; gateway?: string | null; dhcp: boolean };
}

export interface ResourcePlan {
  id: string;
  action: ResourceAction;
  changes: Change[];
  error?: string;
  ovsOps: Operation[];
  /** `ip` argument arrays, in order, after the OVSDB transaction. */
  ipSteps: string[][];
  /** Devices ipSteps need: waited for after the OVSDB transaction (ovs-vswitchd creates internal ports). */
  needsLinks: string[];
  /** The default route, after every address. */
  routeSteps: string[][];
}

const OVS_TYPES = new Set<InterfaceType>(['ovs-bridge', 'ovs-port', 'ovs-internal', 'ovs-bond']);
const sorted = (xs: readonly string[]): string[] => [...new Set(xs)].sort();

/** The document's interfaces as Wants (ports sorted, addresses as "ip/prefix", bridges of ports filled in). */
export function wantsOf(section: NetSection): Want[] {
  const list = section.interfaces ?? [];
  const bridgeOfPort = new Map<string, string>();
  for (const i of list) {
    if (i.type === 'ovs-bridge' || i.type === 'linux-bridge')
      for (const p of i.ports ?? []) bridgeOfPort.set(p, i.name);
  }
  return list.map((i: Interface, index): Want => {
    const w: Want = { index, name: i.name, type: i.type };
    const bridge = i.bridge ?? bridgeOfPort.get(i.name);
    if (bridge !== undefined && i.type !== 'ovs-bridge' && i.type !== 'linux-bridge') w.bridge = bridge;
    if (i.ports !== undefined) w.ports = sorted(i.ports);
    if (i.tag !== undefined) w.tag = i.tag;
    if (i.trunks !== undefined) w.trunks = [...new Set(i.trunks)].sort((a, b) => a - b);
    if (i.bond_mode !== undefined) w.bond_mode = i.bond_mode;
    if (i.lacp !== undefined) w.lacp = i.lacp;
    if (i.ipv4 !== undefined) {
      const addresses = i.ipv4.enabled === false ? [] : sorted((i.ipv4.address ?? []).map(addressText));
      w.ipv4 = { addresses, dhcp: i.ipv4.dhcp === true };
      if (i.ipv4.gateway !== undefined) w.ipv4.gateway = i.ipv4.gateway;
    }
    return w;
  });
}

/** Plans every want against host; `prune` removes the ports of named bridges that no want names. */
export function reconcile(
  wants: readonly Want[],
  host: Host,
  o: { prune: boolean; datapathType: string },
): ResourcePlan[] {
  const declared = new Map(wants.map((w) => [w.name, w]));
  return wants.map((w) => reconcileOne(w, declared, host, o));
}

function reconcileOne(
  w: Want,
  declared: Map<string, Want>,
  host: Host,
  o: { prune: boolean; datapathType: string },
): ResourcePlan {
  const plan: ResourcePlan = {
    id: w.name,
    action: 'noop',
    changes: [],
    ovsOps: [],
    ipSteps: [],
    needsLinks: [],
    routeSteps: [],
  };
  const at = (...field: string[]): string =>
    pointer('plugins', 'net', 'interfaces', String(w.index), ...field);
  const errors: string[] = [];
  let creating = false;

  if (OVS_TYPES.has(w.type) && host.ovs === undefined) {
    errors.push(`Open vSwitch is not reachable: ${host.ovsProblem ?? 'no database'}`);
  } else if (w.type === 'ovs-bridge' && host.ovs !== undefined) {
    creating = ovsBridge(w, declared, host, host.ovs, o, plan, at, errors);
  } else if (OVS_TYPES.has(w.type) && host.ovs !== undefined) {
    creating = ovsPort(w, declared, host, host.ovs, plan, at, errors);
  } else if (w.type === 'linux-bridge') {
    creating = linuxBridge(w, declared, host, o, plan, at, errors);
  }
  if (w.ipv4 !== undefined) ipv4(w, host, plan, at, errors, creating);

  if (errors.length > 0) plan.error = `${w.type} ${w.name}: ${errors.join('; ')}`;
  if (plan.changes.length > 0 || plan.error !== undefined) plan.action = creating ? 'create' : 'modify';
  return plan;
}

type At = (...field: string[]) => string;

function ovsBridge(
  w: Want,
  declared: Map<string, Want>,
  host: Host,
  ovs: OvsSnapshot,
  o: { prune: boolean; datapathType: string },
  plan: ResourcePlan,
  at: At,
  errors: string[],
): boolean {
  const br = ovs.bridges.get(w.name);
  const id = `b${w.index}`;
  let creating = false;
  if (br === undefined) {
    const link = host.links.get(w.name);
    if (link !== undefined)
      errors.push(`a ${link.kind || 'network'} interface named ${w.name} already exists`);
    creating = true;
    plan.changes.push({ path: at(), after: { name: w.name, type: 'ovs-bridge' } });
    plan.ovsOps.push(
      // the bridge must not appear meanwhile (a concurrent ovs-vsctl add-br): else the whole transaction fails
      {
        op: 'wait',
        table: 'Bridge',
        where: [['name', '==', w.name]],
        columns: ['name'],
        until: '==',
        rows: [],
        timeout: 0,
      },
      { op: 'insert', table: 'Interface', row: { name: w.name, type: 'internal' }, 'uuid-name': `${id}i` },
      {
        op: 'insert',
        table: 'Port',
        row: { name: w.name, interfaces: namedUuid(`${id}i`) },
        'uuid-name': `${id}p`,
      },
      {
        op: 'insert',
        table: 'Bridge',
        row: { name: w.name, ports: namedUuid(`${id}p`), datapath_type: o.datapathType },
        'uuid-name': id,
      },
      { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'insert', namedUuid(id)]] },
    );
  }
  if (w.ports === undefined) return creating;
  const have = (br?.ports ?? []).filter((p) => p !== w.name);
  const ownedElsewhere = (p: string): boolean => declared.get(p)?.bridge === w.name;
  const add = w.ports.filter((p) => !have.includes(p));
  const remove = o.prune ? have.filter((p) => !w.ports?.includes(p) && !ownedElsewhere(p)) : [];
  let k = 0;
  for (const p of add) {
    const other = ovs.ports.get(p);
    if (other !== undefined && other.bridge !== w.name) {
      errors.push(`port ${p} is on bridge ${other.bridge}`);
      continue;
    }
    const d = declared.get(p);
    if (d !== undefined && d.type !== 'ovs-bridge' && d.type !== 'linux-bridge') continue; // its own resource adds it
    if (!host.links.has(p)) {
      errors.push(`port ${p} does not exist on this host`);
      continue;
    }
    if (host.links.get(p)?.up === false) plan.ipSteps.push(['link', 'set', 'dev', p, 'up']);
    const pid = `${id}a${k++}`;
    plan.ovsOps.push(
      { op: 'insert', table: 'Interface', row: { name: p }, 'uuid-name': `${pid}i` },
      { op: 'insert', table: 'Port', row: { name: p, interfaces: namedUuid(`${pid}i`) }, 'uuid-name': pid },
      {
        op: 'mutate',
        table: 'Bridge',
        where: [['name', '==', w.name]],
        mutations: [['ports', 'insert', namedUuid(pid)]],
      },
    );
  }
  for (const p of remove) {
    const port = ovs.ports.get(p);
    if (port === undefined) continue;
    plan.ovsOps.push({
      op: 'mutate',
      table: 'Bridge',
      where: [['name', '==', w.name]],
      mutations: [['ports', 'delete', uuid(port.uuid)]],
    });
  }
  if (add.length > 0 || remove.length > 0) {
    const after = sorted([...have.filter((p) => !remove.includes(p)), ...add]);
    plan.changes.push({ path: at('ports'), before: have, after });
  }
  return creating;
}

function ovsPort(
  w: Want,
  declared: Map<string, Want>,
  host: Host,
  ovs: OvsSnapshot,
  plan: ResourcePlan,
  at: At,
  errors: string[],
): boolean {
  const id = `p${w.index}`;
  if (w.bridge === undefined) {
    errors.push('names no bridge (set "bridge", or list it in a bridge\'s ports)');
    return false;
  }
  if (!ovs.bridges.has(w.bridge) && declared.get(w.bridge)?.type !== 'ovs-bridge') {
    errors.push(`bridge ${w.bridge} is neither on this host nor an ovs-bridge of the document`);
    return false;
  }
  const port = ovs.ports.get(w.name);
  const members = w.type === 'ovs-bond' ? (w.ports ?? []) : [w.name];
  if (w.type === 'ovs-bond' && members.length < 2) errors.push('a bond needs at least two ports');
  if (port !== undefined && port.bridge !== w.bridge) {
    errors.push(
      `is on bridge ${port.bridge}, not ${w.bridge} (moving ports is not supported: remove it first)`,
    );
    return false;
  }
  const columns: Record<string, unknown> = {};
  const compare = (field: 'tag' | 'bond_mode' | 'lacp', want: unknown, have: unknown): void => {
    if (want === undefined) return;
    const w2 = want ?? undefined;
    if (w2 === have) return;
    columns[field] = w2 === undefined ? set([]) : w2;
    if (port !== undefined) plan.changes.push({ path: at(field), before: have, after: w2 });
  };
  compare('tag', w.tag, port?.tag);
  compare('bond_mode', w.bond_mode, port?.bond_mode);
  compare('lacp', w.lacp, port?.lacp);
  if (w.trunks !== undefined && JSON.stringify(w.trunks) !== JSON.stringify(port?.trunks ?? [])) {
    columns['trunks'] = set(w.trunks);
    if (port !== undefined) plan.changes.push({ path: at('trunks'), before: port.trunks, after: w.trunks });
  }
  const needLink = w.type !== 'ovs-internal';
  const newMembers = members.filter((m) => !(port?.interfaces ?? []).includes(m));
  for (const m of newMembers) {
    if (needLink && !host.links.has(m)) errors.push(`port ${m} does not exist on this host`);
    else if (needLink && host.links.get(m)?.up === false) plan.ipSteps.push(['link', 'set', 'dev', m, 'up']);
  }
  if (port === undefined) {
    plan.changes.push({
      path: at(),
      after: {
        name: w.name,
        type: w.type,
        bridge: w.bridge,
        ...(w.type === 'ovs-bond' ? { ports: members } : {}),
      },
    });
    const ifaceOps: Operation[] = members.map((m, k) => ({
      op: 'insert',
      table: 'Interface',
      row: { name: m, ...(w.type === 'ovs-internal' ? { type: 'internal' } : {}) },
      'uuid-name': `${id}i${k}`,
    }));
    plan.ovsOps.push(
      ...ifaceOps,
      {
        op: 'insert',
        table: 'Port',
        row: { name: w.name, interfaces: set(members.map((_, k) => namedUuid(`${id}i${k}`))), ...columns },
        'uuid-name': id,
      },
      {
        op: 'mutate',
        table: 'Bridge',
        where: [['name', '==', w.bridge]],
        mutations: [['ports', 'insert', namedUuid(id)]],
      },
    );
    return true;
  }
  if (w.type === 'ovs-bond' && JSON.stringify(port.interfaces) !== JSON.stringify(sorted(members))) {
    plan.changes.push({ path: at('ports'), before: port.interfaces, after: sorted(members) });
    const kept = members
      .filter((m) => port.interfaces.includes(m))
      .map((m) => ovs.interfaces.get(m)?.uuid)
      .filter((u): u is string => u !== undefined)
      .map(uuid);
    newMembers.forEach((m, k) =>
      plan.ovsOps.push({ op: 'insert', table: 'Interface', row: { name: m }, 'uuid-name': `${id}n${k}` }),
    );
    columns['interfaces'] = set([...kept, ...newMembers.map((_, k) => namedUuid(`${id}n${k}`))]);
  }
  if (Object.keys(columns).length > 0) {
    plan.ovsOps.push({
      op: 'update',
      table: 'Port',
      where: [['_uuid', '==', uuid(port.uuid)]],
      row: columns,
    });
  }
  return false;
}

function linuxBridge(
  w: Want,
  declared: Map<string, Want>,
  host: Host,
  o: { prune: boolean },
  plan: ResourcePlan,
  at: At,
  errors: string[],
): boolean {
  if (w.tag !== undefined || w.trunks !== undefined)
    errors.push('VLAN tag and trunks are managed on OVS ports only');
  const link = host.links.get(w.name);
  let creating = false;
  if (link !== undefined && link.kind !== 'bridge') {
    errors.push(`a ${link.kind || 'network'} interface named ${w.name} exists and is not a Linux bridge`);
    return false;
  }
  if (link === undefined) {
    creating = true;
    plan.changes.push({ path: at(), after: { name: w.name, type: 'linux-bridge' } });
    plan.ipSteps.push(
      ['link', 'add', 'name', w.name, 'type', 'bridge'],
      ['link', 'set', 'dev', w.name, 'up'],
    );
  } else if (!link.up) {
    plan.changes.push({ path: at('up'), before: false, after: true });
    plan.ipSteps.push(['link', 'set', 'dev', w.name, 'up']);
  }
  if (w.ports === undefined) return creating;
  const have = sorted([...host.links.values()].filter((l) => l.master === w.name).map((l) => l.name));
  const add = w.ports.filter((p) => !have.includes(p));
  const remove = o.prune ? have.filter((p) => !w.ports?.includes(p) && declared.get(p) === undefined) : [];
  for (const p of add) {
    const l = host.links.get(p);
    if (l === undefined) errors.push(`port ${p} does not exist on this host`);
    else if (l.master !== undefined) errors.push(`port ${p} is already a port of ${l.master}`);
    else plan.ipSteps.push(['link', 'set', 'dev', p, 'master', w.name], ['link', 'set', 'dev', p, 'up']);
  }
  for (const p of remove) plan.ipSteps.push(['link', 'set', 'dev', p, 'nomaster']);
  if (add.length > 0 || remove.length > 0) {
    plan.changes.push({
      path: at('ports'),
      before: have,
      after: sorted([...have.filter((p) => !remove.includes(p)), ...add]),
    });
  }
  return creating;
}

function ipv4(w: Want, host: Host, plan: ResourcePlan, at: At, errors: string[], creating: boolean): void {
  const want = w.ipv4;
  if (want === undefined) return;
  if (want.dhcp)
    errors.push('DHCP is not run by op-dbus: give the addresses (ipv4.address) or leave ipv4 out');
  const have = host.addresses.get(w.name) ?? [];
  const add = want.addresses.filter((a) => !have.includes(a));
  const remove = have.filter((a) => !want.addresses.includes(a));
  const link = host.links.get(w.name);
  if (
    add.length > 0 &&
    (link === undefined || !link.up) &&
    !plan.ipSteps.some((s) => s.includes('up') && s.includes(w.name))
  ) {
    plan.ipSteps.push(['link', 'set', 'dev', w.name, 'up']);
  }
  for (const a of remove) plan.ipSteps.push(['address', 'del', a, 'dev', w.name]);
  for (const a of add) plan.ipSteps.push(['address', 'add', a, 'dev', w.name]);
  if (add.length > 0 || remove.length > 0) {
    plan.changes.push({ path: at('ipv4', 'address'), before: have, after: want.addresses });
  }
  // ovs-vswitchd creates an OVS internal interface's device after the transaction: wait for it
  if (OVS_TYPES.has(w.type) && (link === undefined || creating)) plan.needsLinks.push(w.name);
  const route = host.route;
  if (want.gateway === null) {
    if (route?.dev === w.name) {
      plan.routeSteps.push(['route', 'del', 'default', 'via', route.gateway, 'dev', w.name]);
      plan.changes.push({ path: at('ipv4', 'gateway'), before: route.gateway });
    }
  } else if (want.gateway !== undefined && (route?.gateway !== want.gateway || route.dev !== w.name)) {
    plan.routeSteps.push(['route', 'replace', 'default', 'via', want.gateway, 'dev', w.name]);
    plan.changes.push({
      path: at('ipv4', 'gateway'),
      before:
        route === undefined
          ? undefined
          : route.dev === w.name
            ? route.gateway
            : `${route.gateway} (dev ${route.dev})`,
      after: want.gateway,
    });
  }
}

/** What the host has of a want's name, as a want (for a checkpoint): undefined when it does not exist. */
export function wantOfHost(w: Want, host: Host): Want | undefined {
  const out: Want = { index: w.index, name: w.name, type: w.type };
  const ovs = host.ovs;
  if (w.type === 'ovs-bridge') {
    const br = ovs?.bridges.get(w.name);
    if (br === undefined) return undefined;
    out.ports = br.ports.filter((p) => p !== w.name);
  } else if (w.type === 'linux-bridge') {
    const l = host.links.get(w.name);
    if (l === undefined || l.kind !== 'bridge') return undefined;
    out.ports = sorted([...host.links.values()].filter((x) => x.master === w.name).map((x) => x.name));
  } else {
    const port = ovs?.ports.get(w.name);
    if (port === undefined) return undefined;
    out.bridge = port.bridge;
    out.tag = port.tag ?? null;
    out.trunks = port.trunks;
    out.bond_mode = port.bond_mode ?? null;
    out.lacp = port.lacp ?? null;
    if (w.type === 'ovs-bond') out.ports = port.interfaces;
  }
  if (w.ipv4 !== undefined) {
    out.ipv4 = {
      addresses: host.addresses.get(w.name) ?? [],
      dhcp: false,
      gateway: host.route?.dev === w.name ? host.route.gateway : null,
    };
  }
  return out;
}

/** OVSDB operations that remove an interface a checkpoint says did not exist (ip steps for a Linux bridge). */
export function removal(w: Want, host: Host): { ovsOps: Operation[]; ipSteps: string[][] } {
  const ovs = host.ovs;
  if (w.type === 'ovs-bridge') {
    const br = ovs?.bridges.get(w.name);
    if (br === undefined) return { ovsOps: [], ipSteps: [] };
    return {
      ovsOps: [
        { op: 'mutate', table: 'Open_vSwitch', where: [], mutations: [['bridges', 'delete', uuid(br.uuid)]] },
      ],
      ipSteps: [],
    };
  }
  if (w.type === 'linux-bridge') {
    return host.links.get(w.name)?.kind === 'bridge'
      ? { ovsOps: [], ipSteps: [['link', 'del', 'dev', w.name]] }
      : { ovsOps: [], ipSteps: [] };
  }
  const port = ovs?.ports.get(w.name);
  if (port === undefined) return { ovsOps: [], ipSteps: [] };
  return {
    ovsOps: [
      {
        op: 'mutate',
        table: 'Bridge',
        where: [['name', '==', port.bridge]],
        mutations: [['ports', 'delete', uuid(port.uuid)]],
      },
    ],
    ipSteps: [],
  };
}
