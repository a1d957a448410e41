import {
  REDACTED_VALUE,
  type Change,
  type PluginDiff,
  type ResourceDiff,
} from '../../common/contract/index.js';

/** Longest value shown in a summary; longer ones are cut with an ellipsis (the payload keeps them whole). */
const VALUE_MAX = 48;
/** Fields of a created resource named with their values, at most. */
const CREATED_FIELDS_MAX = 4;

/**
 * What a plan changes, in words, with values, for people and for search (DESIGN.md section 6):
 * "wireguard wg0: listen_port 51820 → 51821, peers/laptop-carol added". Built from the diffs as shown
 * (secrets already redacted): a redacted value is named, never shown. Generic over plugins: the words come
 * from the resource ids and the JSON pointers of the changes.
 */
export function describeChanges(diffs: readonly PluginDiff[]): string {
  const parts: string[] = [];
  for (const d of diffs) {
    for (const r of d.resources) {
      if (r.action === 'noop') continue;
      parts.push(describeResource(d.plugin, r));
    }
  }
  return parts.join('; ');
}

function describeResource(plugin: string, r: ResourceDiff): string {
  const head = `${plugin} ${r.id}`;
  if (r.action === 'delete') return `${head} removed`;
  if (r.action === 'create') {
    const fields = r.changes
      .flatMap((c) => createdFields(fieldOf(plugin, r.id, c.path), c.after))
      .slice(0, CREATED_FIELDS_MAX);
    return fields.length === 0 ? `${head} added` : `${head} added (${fields.join(', ')})`;
  }
  const changes = r.changes.map((c) => describeChange(fieldOf(plugin, r.id, c.path), c));
  return changes.length === 0 ? `${head} changed` : `${head}: ${changes.join(', ')}`;
}

/** One change of a modified resource: `field before → after`, `field added`, `field removed`. */
function describeChange(field: string, c: Change): string {
  const name = field === '' ? 'value' : field;
  if (c.before === undefined) {
    return isScalar(c.after) ? `${name} ${shown(c.after)} added` : `${name} added`;
  }
  if (c.after === undefined) return `${name} removed`;
  if (c.before === REDACTED_VALUE || c.after === REDACTED_VALUE) return `${name} changed (secret)`;
  if (isScalar(c.before) && isScalar(c.after)) return `${name} ${shown(c.before)} → ${shown(c.after)}`;
  return `${name} changed`;
}

/** The scalar fields of a created value, as `name value` (secrets named only). */
function createdFields(prefix: string, value: unknown): string[] {
  if (isScalar(value)) {
    const name = prefix === '' ? 'value' : prefix;
    return [value === REDACTED_VALUE ? `${name} (secret)` : `${name} ${shown(value)}`];
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  return Object.entries(value).flatMap(([k, v]) =>
    isScalar(v) ? createdFields(prefix === '' ? k : `${prefix}/${k}`, v) : [],
  );
}

/**
 * The change's place below its resource: the JSON pointer without `/plugins/<plugin>` and, when it
 * appears there, the resource id (`/plugins/wireguard/interfaces/wg0/listen_port` → `listen_port`).
 */
function fieldOf(plugin: string, id: string, path: string): string {
  const segs = path
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
  let i = segs[0] === 'plugins' && segs[1] === plugin ? 2 : 0;
  const at = segs.indexOf(id, i);
  if (at >= 0) i = at + 1;
  return segs.slice(i).join('/');
}

function isScalar(v: unknown): v is string | number | boolean | null {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

/** A value as a summary shows it: strings bare when they are one word, else quoted; cut when long. */
function shown(v: string | number | boolean | null): string {
  const text = typeof v === 'string' && /^[\w.:/@+-]+$/.test(v) ? v : JSON.stringify(v);
  return text.length > VALUE_MAX ? `${text.slice(0, VALUE_MAX - 1)}…` : text;
}
