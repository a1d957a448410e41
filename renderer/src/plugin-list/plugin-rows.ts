/**
 * One `[[permissions.dbus]]` entry in words: the bus name and interface, the methods it may call
 * and its access to properties. The contract carries permissions as JSON, so fields are read with care.
 */
export function permissionText(permission: unknown): string {
  if (typeof permission !== 'object' || permission === null) return JSON.stringify(permission);
  const p = permission as Record<string, unknown>;
  const words = (v: unknown): string[] =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  const name = typeof p['name'] === 'string' ? p['name'] : '?';
  const iface = typeof p['interface'] === 'string' ? p['interface'] : '?';
  const methods = words(p['methods']);
  const paths = words(p['paths']);
  const properties = typeof p['properties'] === 'string' ? p['properties'] : 'none';
  return [
    `${name} ${iface}${paths.length > 0 ? ` at ${paths.join(', ')}` : ''}`,
    methods.length > 0 ? `calls ${methods.join(', ')}` : 'no methods',
    properties === 'none' ? 'no properties' : `properties ${properties}`,
  ].join('; ');
}
