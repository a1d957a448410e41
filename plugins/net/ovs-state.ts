import { mapOf, optionalOf, OvsdbClient, setOf, uuidOf, type Operation } from './ovsdb.js';

// What Open_vSwitch's database says about bridges, ports and interfaces, read in one transaction;
// shared by the net plugin (bridges, ports, bonds) and the openflow plugin (port numbers, controllers).

export interface OvsInterface {
  uuid: string;
  name: string;
  type: string;
  /** The OpenFlow port number once ovs-vswitchd has attached it (-1 when it failed). */
  ofport?: number;
  error?: string;
}

export interface OvsPort {
  uuid: string;
  name: string;
  bridge: string;
  interfaces: string[];
  tag?: number;
  trunks: number[];
  bond_mode?: string;
  lacp?: string;
}

export interface OvsBridge {
  uuid: string;
  name: string;
  ports: string[];
  datapath_type: string;
  controllers: string[];
  external_ids: Record<string, unknown>;
}

export interface OvsSnapshot {
  bridges: Map<string, OvsBridge>;
  ports: Map<string, OvsPort>;
  interfaces: Map<string, OvsInterface>;
}

const DB = 'Open_vSwitch';

/** Reads bridges, ports, interfaces and controllers in one transaction (a consistent snapshot). */
export async function readOvs(client: OvsdbClient): Promise<OvsSnapshot> {
  const selects: Operation[] = [
    {
      op: 'select',
      table: 'Bridge',
      where: [],
      columns: ['_uuid', 'name', 'ports', 'datapath_type', 'controller', 'external_ids'],
    },
    {
      op: 'select',
      table: 'Port',
      where: [],
      columns: ['_uuid', 'name', 'interfaces', 'tag', 'trunks', 'bond_mode', 'lacp'],
    },
    { op: 'select', table: 'Interface', where: [], columns: ['_uuid', 'name', 'type', 'ofport', 'error'] },
    { op: 'select', table: 'Controller', where: [], columns: ['_uuid', 'target'] },
  ];
  const [b, p, i, c] = (await client.transact(DB, selects)) as { rows: Record<string, unknown>[] }[];
  const ifaceByUuid = new Map<string, OvsInterface>();
  for (const row of i?.rows ?? []) {
    const ofport = optionalOf(row['ofport']);
    const error = optionalOf(row['error']);
    ifaceByUuid.set(uuidOf(row['_uuid']), {
      uuid: uuidOf(row['_uuid']),
      name: String(row['name']),
      type: String(row['type']),
      ...(typeof ofport === 'number' ? { ofport } : {}),
      ...(typeof error === 'string' ? { error } : {}),
    });
  }
  const controllerByUuid = new Map<string, string>();
  for (const row of c?.rows ?? []) controllerByUuid.set(uuidOf(row['_uuid']), String(row['target']));
  const portRows = new Map<string, Record<string, unknown>>();
  for (const row of p?.rows ?? []) portRows.set(uuidOf(row['_uuid']), row);

  const snapshot: OvsSnapshot = { bridges: new Map(), ports: new Map(), interfaces: new Map() };
  for (const iface of ifaceByUuid.values()) snapshot.interfaces.set(iface.name, iface);
  for (const row of b?.rows ?? []) {
    const name = String(row['name']);
    const ports: string[] = [];
    for (const pu of setOf(row['ports'])) {
      const pr = portRows.get(uuidOf(pu));
      if (pr === undefined) continue;
      const portName = String(pr['name']);
      ports.push(portName);
      const tag = optionalOf(pr['tag']);
      const bondMode = optionalOf(pr['bond_mode']);
      const lacp = optionalOf(pr['lacp']);
      snapshot.ports.set(portName, {
        uuid: uuidOf(pr['_uuid']),
        name: portName,
        bridge: name,
        interfaces: setOf(pr['interfaces'])
          .map((u) => ifaceByUuid.get(uuidOf(u))?.name)
          .filter((n): n is string => n !== undefined)
          .sort(),
        ...(typeof tag === 'number' ? { tag } : {}),
        trunks: setOf(pr['trunks'])
          .filter((t): t is number => typeof t === 'number')
          .sort((x, y) => x - y),
        ...(typeof bondMode === 'string' ? { bond_mode: bondMode } : {}),
        ...(typeof lacp === 'string' ? { lacp } : {}),
      });
    }
    snapshot.bridges.set(name, {
      uuid: uuidOf(row['_uuid']),
      name,
      ports: ports.sort(),
      datapath_type: String(row['datapath_type']),
      controllers: setOf(row['controller'])
        .map((u) => controllerByUuid.get(uuidOf(u)))
        .filter((t): t is string => t !== undefined)
        .sort(),
      external_ids: mapOf(row['external_ids']),
    });
  }
  return snapshot;
}

/** Opens a connection for one call and always closes it. */
export async function withOvsdb<T>(socket: string, fn: (client: OvsdbClient) => Promise<T>): Promise<T> {
  const client = await OvsdbClient.connect(socket);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
