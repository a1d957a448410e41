import { z } from 'zod';

// The net section, in the original project's shape (example-state.json): one list of interfaces,
// each an OVS bridge, an OVS port, internal interface or bond, or a Linux bridge, with IPv4
// addresses and a gateway on it.

const IFNAME = /^[A-Za-z0-9_.:@-]{1,15}$/;
const IPV4 = /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const CIDR = /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\/(3[0-2]|[12]?\d)$/;

const ifname = z
  .string()
  .regex(IFNAME)
  .meta({ 'x-error': 'an interface name: 1-15 letters, digits, ".", "_", ":", "@" or "-"' });
const ipv4 = z.string().regex(IPV4).meta({ 'x-error': 'an IPv4 address (e.g. 172.16.0.10)' });
const vlan = z.number().int().min(0).max(4095);

export const Address = z.union([
  z.object({ ip: ipv4, prefix: z.number().int().min(0).max(32) }).strict(),
  z.string().regex(CIDR).meta({ 'x-error': 'an IPv4 address with its prefix (e.g. 172.16.0.10/24)' }),
]);

export const Ipv4 = z
  .object({
    enabled: z.boolean().optional().describe('false removes every IPv4 address of the interface'),
    dhcp: z.boolean().optional().describe('DHCP is not run by op-dbus: true is refused per interface'),
    address: z.array(Address).optional().describe('the complete list of IPv4 addresses'),
    gateway: ipv4.optional().describe('the IPv4 default route, through this interface'),
  })
  .strict();

export const InterfaceType = z.enum(['ovs-bridge', 'ovs-port', 'ovs-internal', 'ovs-bond', 'linux-bridge']);
export type InterfaceType = z.infer<typeof InterfaceType>;

export const Interface = z
  .object({
    name: ifname,
    type: InterfaceType,
    ports: z
      .array(ifname)
      .optional()
      .describe('a bridge: its ports (host interfaces, or ports named in this list); a bond: its members'),
    bridge: ifname.optional().describe('an OVS port, internal interface or bond: its bridge'),
    tag: vlan.optional().describe('OVS: the access VLAN of the port'),
    trunks: z.array(vlan).optional().describe('OVS: the VLANs a trunk port carries ([] = all)'),
    bond_mode: z.enum(['active-backup', 'balance-slb', 'balance-tcp']).optional(),
    lacp: z.enum(['active', 'passive', 'off']).optional(),
    ipv4: Ipv4.optional(),
  })
  .strict();
export type Interface = z.infer<typeof Interface>;

export const NetSection = z
  .object({
    interfaces: z.array(Interface).optional(),
    prune: z
      .boolean()
      .optional()
      .describe("true: ports on the document's bridges that the document does not name are removed"),
  })
  .strict();
export type NetSection = z.infer<typeof NetSection>;

/** An address in either of the document's forms, as "ip/prefix". */
export function addressText(a: z.infer<typeof Address>): string {
  return typeof a === 'string' ? a : `${a.ip}/${a.prefix}`;
}
