/** A JSON Schema as data (the SDK's JsonSchema). */
type JsonSchema = Record<string, unknown>;
import {
  isStandardInterface,
  type DbusInterface,
  type DbusMethod,
  type Introspection,
} from './introspection.js';
import type { DiffStrategy, SemanticMapping, Validation } from './mapping.js';
import { parseSignature, parseSingleType, schemaOf } from './signature.js';

// A generated plugin as data: the service's readable properties and, when a mapping says so, the
// keys of its section with the one D-Bus method each is applied by. This is all the generic
// runtime (runtime.ts) gets, across the process boundary: plain JSON.

/** One D-Bus method a mapping allows, resolved against the introspection. */
export interface SpecMethod {
  /** Its snake_case name in the mapping. */
  id: string;
  path: string;
  interface: string;
  member: string;
  signature: string;
  /** One per input argument: the desired value, or a constant of the mapping's defaults. */
  args: ({ value: true } | { constant: unknown })[];
  /** The type of the desired value, when one argument is "value". */
  valueType?: string;
  safe: boolean;
  requiresConfirmation: boolean;
  idempotent: boolean;
  preCheck?: string;
}

export interface SpecKey {
  /** Where the value is read: a property (Get/GetAll), or a [methods] entry without arguments. */
  query:
    { property: string; path: string; interface: string; type: string } | { method: string; type: string };
  apply?: string;
  remove?: string;
  strategy: DiffStrategy;
}

export interface GeneratedSpec {
  name: string;
  service: string;
  /** Every object's non-standard interfaces and their readable properties (the section without a mapping). */
  objects: { path: string; interfaces: { name: string; properties: { name: string; type: string }[] }[] }[];
  mapping?: {
    keys: Record<string, SpecKey>;
    methods: Record<string, SpecMethod>;
    preApply?: string;
    postApply?: string;
    rollback?: string;
    maxBatch?: number;
    minDiskMb?: number;
    protected: string[];
    timeoutMs?: number;
  };
}

export type SpecResult =
  { ok: true; spec: GeneratedSpec; schema: JsonSchema } | { ok: false; message: string; pointer?: string };

/** A plugin name from a bus name: its last element, lower-case (org.freedesktop.timedate1 → timedate1). */
export function pluginNameOf(service: string): string {
  const last = service.split('.').pop() ?? service;
  const name = last
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .replace(/^[^a-z]+/, '');
  return (name === '' ? 'dbus' : name).slice(0, 63);
}

/** The bus name a file's interfaces suggest: the first non-standard interface, less a capitalised last element. */
export function serviceOf(x: Introspection): string | undefined {
  const first = x.objects.flatMap((o) => o.interfaces).find((i) => !isStandardInterface(i.name));
  if (first === undefined) return undefined;
  const parts = first.name.split('.');
  const last = parts[parts.length - 1] ?? '';
  return parts.length > 2 && /^[A-Z]/.test(last) ? parts.slice(0, -1).join('.') : first.name;
}

/** Splits a name into lower-case words, so set_local_rtc matches SetLocalRTC. */
const squash = (s: string): string => s.replace(/_/g, '').toLowerCase();

/** Builds the spec (and the section's JSON Schema) of a service, with its mapping when there is one. */
export function buildSpec(
  x: Introspection,
  o: { service: string; name?: string; mapping?: SemanticMapping },
): SpecResult {
  const name = o.name ?? pluginNameOf(o.service);
  const objects = x.objects
    .map((obj) => ({
      path: obj.path,
      interfaces: obj.interfaces
        .filter((i) => !isStandardInterface(i.name))
        .map((i) => ({
          name: i.name,
          properties: i.properties
            .filter((p) => p.access !== 'write')
            .map((p) => ({ name: p.name, type: p.type })),
        })),
    }))
    .filter((obj) => obj.interfaces.length > 0);
  const spec: GeneratedSpec = { name, service: o.service, objects };
  if (o.mapping === undefined) return { ok: true, spec, schema: readOnlySchema(spec) };
  const m = o.mapping;
  if (m.service.name !== o.service)
    return {
      ok: false,
      message: `the mapping is for ${m.service.name}, not ${o.service}`,
      pointer: '/service/name',
    };
  const owned = x.objects.flatMap((obj) =>
    obj.interfaces.filter((i) => !isStandardInterface(i.name)).map((i) => ({ path: obj.path, iface: i })),
  );
  const methods: Record<string, SpecMethod> = {};
  for (const [id, mm] of Object.entries(m.methods)) {
    const found: { path: string; iface: DbusInterface; method: DbusMethod }[] = [];
    for (const { path, iface } of owned)
      for (const method of iface.methods)
        if (squash(method.name) === squash(id)) found.push({ path, iface, method });
    if (found.length !== 1)
      return {
        ok: false,
        pointer: `/methods/${id}`,
        message: `methods.${id}: ${found.length === 0 ? 'no method of the service has this name' : `names ${found.length} methods (${found.map((f) => `${f.iface.name}.${f.method.name}`).join(', ')})`}`,
      };
    const f = found[0] as (typeof found)[number];
    const types = f.method.in.map((a) => a.type);
    if (mm.arg_types !== undefined && mm.arg_types.join('') !== types.join(''))
      return {
        ok: false,
        pointer: `/methods/${id}/arg_types`,
        message: `methods.${id}.arg_types: ${JSON.stringify(mm.arg_types)}, but ${f.method.name} takes ${JSON.stringify(types)}`,
      };
    if (mm.args_mapping.length !== types.length)
      return {
        ok: false,
        pointer: `/methods/${id}/args_mapping`,
        message: `methods.${id}.args_mapping: ${mm.args_mapping.length} entries for ${types.length} arguments of ${f.method.name}`,
      };
    const valueAt = mm.args_mapping.indexOf('value');
    if (valueAt >= 0 && mm.args_mapping.lastIndexOf('value') !== valueAt)
      return {
        ok: false,
        pointer: `/methods/${id}/args_mapping`,
        message: `methods.${id}.args_mapping: "value" at most once`,
      };
    methods[id] = {
      id,
      path: f.path,
      interface: f.iface.name,
      member: f.method.name,
      signature: types.join(''),
      args: mm.args_mapping.map((a) =>
        a === 'value' ? { value: true as const } : { constant: mm.defaults[a] },
      ),
      ...(valueAt >= 0 ? { valueType: types[valueAt] as string } : {}),
      safe: mm.safe,
      requiresConfirmation: mm.requires_confirmation,
      idempotent: mm.idempotent,
      ...(mm.pre_check !== undefined ? { preCheck: mm.pre_check } : {}),
    };
  }
  const keys: Record<string, SpecKey> = {};
  const properties: Record<string, JsonSchema> = {};
  for (const [key, sk] of Object.entries(m.state_mapping)) {
    const where = `/state_mapping/${key}`;
    let query: SpecKey['query'];
    let validation: Validation | undefined;
    const method = m.methods[sk.query_method];
    const prop = owned.flatMap(({ path, iface }) =>
      iface.properties
        .filter((p) => p.name === sk.query_method && p.access !== 'write')
        .map((p) => ({ path, iface, p })),
    );
    if (method !== undefined) {
      const sm = methods[sk.query_method] as SpecMethod;
      const out =
        x.objects
          .flatMap((obj) => obj.interfaces)
          .find((i) => i.name === sm.interface)
          ?.methods.find((mm) => mm.name === sm.member)?.out ?? [];
      if (sm.args.length > 0 || out.length !== 1)
        return {
          ok: false,
          pointer: `${where}/query_method`,
          message: `state_mapping.${key}.query_method: ${sk.query_method} must take no argument and return one value`,
        };
      query = { method: sk.query_method, type: (out[0] as { type: string }).type };
      validation = method.validation;
    } else if (prop.length === 1) {
      const { path, iface, p } = prop[0] as (typeof prop)[number];
      query = { property: p.name, path, interface: iface.name, type: p.type };
      validation = m.properties[p.name]?.validation;
      const declared = m.properties[p.name]?.property_type;
      if (declared !== undefined && declared !== p.type)
        return {
          ok: false,
          pointer: `/properties/${p.name}/property_type`,
          message: `properties.${p.name}.property_type: ${declared}, but the service says ${p.type}`,
        };
    } else {
      return {
        ok: false,
        pointer: `${where}/query_method`,
        message: `state_mapping.${key}.query_method: ${sk.query_method} is ${prop.length > 1 ? 'a property of several interfaces' : 'neither a readable property of the service nor a method of [methods]'}`,
      };
    }
    for (const [field, id] of [
      ['apply_method', sk.apply_method],
      ['remove_method', sk.remove_method],
    ] as const) {
      if (id === undefined) continue;
      const am = methods[id] as SpecMethod;
      if (field === 'apply_method' && am.valueType !== query.type)
        return {
          ok: false,
          pointer: `${where}/${field}`,
          message: `state_mapping.${key}.${field}: ${am.member} must take the value (${query.type}) as one argument mapped to "value"`,
        };
      validation ??= m.methods[id]?.validation;
    }
    const writable = sk.apply_method !== undefined && sk.diff_strategy !== 'none';
    const typeParsed = parseSingleType(query.type);
    if (!typeParsed.ok)
      return {
        ok: false,
        pointer: `${where}/query_method`,
        message: `state_mapping.${key}: ${typeParsed.reason}`,
      };
    let schema: JsonSchema = { ...schemaOf(typeParsed.type), ...(validation ?? {}) };
    if (!writable)
      schema = {
        ...schema,
        readOnly: true,
        description: `read-only: ${sk.apply_method === undefined ? 'no apply_method' : 'diff_strategy none'}`,
      };
    if (sk.remove_method !== undefined) schema = { anyOf: [schema, { type: 'null' }] };
    properties[key] = schema;
    keys[key] = {
      query,
      ...(sk.apply_method !== undefined ? { apply: sk.apply_method } : {}),
      ...(sk.remove_method !== undefined ? { remove: sk.remove_method } : {}),
      strategy: sk.diff_strategy,
    };
  }
  for (const id of [m.safety.pre_apply_hook, m.safety.post_apply_hook]) {
    if (id !== undefined && (methods[id] as SpecMethod).args.some((a) => 'value' in a))
      return {
        ok: false,
        pointer: '/safety',
        message: `safety: the hook ${id} must take no "value" argument`,
      };
  }
  spec.mapping = {
    keys,
    methods,
    ...(m.safety.pre_apply_hook !== undefined ? { preApply: m.safety.pre_apply_hook } : {}),
    ...(m.safety.post_apply_hook !== undefined ? { postApply: m.safety.post_apply_hook } : {}),
    ...(m.safety.rollback_method !== undefined ? { rollback: m.safety.rollback_method } : {}),
    ...(m.safety.max_batch_size !== undefined ? { maxBatch: m.safety.max_batch_size } : {}),
    ...(m.safety.min_disk_space_mb !== undefined ? { minDiskMb: m.safety.min_disk_space_mb } : {}),
    protected: m.safety.protected_services,
    ...(m.safety.operation_timeout !== undefined ? { timeoutMs: m.safety.operation_timeout * 1000 } : {}),
  };
  return { ok: true, spec, schema: { type: 'object', additionalProperties: false, properties } };
}

/** The section of a plugin without a mapping: `{ "<path>": { "<interface>": { "<Property>": value } } }`. */
function readOnlySchema(spec: GeneratedSpec): JsonSchema {
  const objects: Record<string, JsonSchema> = {};
  for (const obj of spec.objects) {
    const ifaces: Record<string, JsonSchema> = {};
    for (const i of obj.interfaces) {
      const props: Record<string, JsonSchema> = {};
      for (const p of i.properties) {
        const t = parseSingleType(p.type);
        props[p.name] = t.ok ? schemaOf(t.type) : {};
      }
      ifaces[i.name] = { type: 'object', additionalProperties: false, properties: props };
    }
    objects[obj.path] = { type: 'object', additionalProperties: false, properties: ifaces };
  }
  return {
    type: 'object',
    additionalProperties: false,
    description: `read-only: ${spec.service} has no semantic mapping`,
    properties: objects,
  };
}

/** Whether a mapping makes any key writable (what `plugin list` says). */
export function writableKeys(spec: GeneratedSpec): string[] {
  if (spec.mapping === undefined) return [];
  return Object.entries(spec.mapping.keys)
    .filter(([, k]) => k.apply !== undefined && k.strategy !== 'none')
    .map(([n]) => n);
}

/** The bus calls a generated plugin needs, as plugin.toml's [[permissions.dbus]]: reads, and the mapping's methods. */
export function permissionsOf(
  spec: GeneratedSpec,
): { name: string; interface: string; paths: string[]; methods: string[]; properties: 'read' }[] {
  const out = new Map<
    string,
    { name: string; interface: string; paths: string[]; methods: string[]; properties: 'read' }
  >();
  for (const obj of spec.objects) {
    for (const i of obj.interfaces) {
      const e = out.get(i.name) ?? {
        name: spec.service,
        interface: i.name,
        paths: [],
        methods: [],
        properties: 'read' as const,
      };
      if (!e.paths.includes(obj.path)) e.paths.push(obj.path);
      out.set(i.name, e);
    }
  }
  for (const m of Object.values(spec.mapping?.methods ?? {})) {
    const e = out.get(m.interface) ?? {
      name: spec.service,
      interface: m.interface,
      paths: [m.path],
      methods: [],
      properties: 'read' as const,
    };
    if (!e.methods.includes(m.member)) e.methods.push(m.member);
    if (!e.paths.includes(m.path)) e.paths.push(m.path);
    out.set(m.interface, e);
  }
  return [...out.values()];
}

export { parseSignature };
