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

/** Where a plugin comes from, as the browser labels it: an installed bundle is a community plugin the core got from a signed bundle. */
export type PluginOrigin = 'built-in' | 'generated' | 'community' | 'bundle';

export function originOf(
  plugin: { name: string; source: 'built-in' | 'generated' | 'community' },
  bundled: ReadonlySet<string>,
): PluginOrigin {
  return plugin.source === 'community' && bundled.has(plugin.name) ? 'bundle' : plugin.source;
}

/** Whether the plugin can change the host, in words: read-only ones say why (the core's reason, else what is known). */
export function writableText(plugin: {
  writable?: boolean | undefined;
  read_only_because?: string | undefined;
  source: string;
}): { writable: boolean | undefined; text: string } {
  if (plugin.writable === true) {
    return {
      writable: true,
      text: plugin.source === 'generated' ? 'writable through its semantic mapping' : 'writable',
    };
  }
  if (plugin.writable === false) {
    return {
      writable: false,
      text: `read-only: ${plugin.read_only_because ?? 'the core gave no reason'}`,
    };
  }
  return { writable: undefined, text: 'the core did not say' };
}

/** A SHA-256 hex for a table cell: its first 12 digits (the full one goes in the title). */
export function shortHash(hash: string): string {
  return hash.length > 12 ? `${hash.slice(0, 12)}…` : hash;
}

/** A rollback's outcome as one sentence. */
export function rollbackSentence(
  r: { name: string; from: string; to: string; auditSeq: number },
  versionOf: (hash: string) => string | undefined,
): string {
  const label = (h: string): string => {
    const v = versionOf(h);
    return v !== undefined ? `${v} (${shortHash(h)})` : shortHash(h);
  };
  return `Rolled ${r.name} back from ${label(r.from)} to ${label(r.to)}; the next plan uses ${label(r.to)} (audit #${r.auditSeq}).`;
}
