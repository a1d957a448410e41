import { statfsSync } from 'node:fs';
import {
  pointer,
  sameJson,
  type PluginBus,
  type PluginContext,
  type ResourceDiff,
  type SectionDiff,
  type StatePlugin,
  type VerifyResult,
} from '../../sdk/index.js';
import type { GeneratedSpec, SpecKey, SpecMethod } from '../../common/generated/spec.js';
import { fromJson, parseSingleType, toJson } from '../../common/generated/signature.js';

// The one implementation of every generated plugin: a StatePlugin driven by its spec (spec.ts).
// Without a mapping it reads the service's properties and changes nothing; with one it writes
// only through the methods the mapping names, each a call the manifest's permissions allow.

type Section = Record<string, unknown>;

/** The generated plugin of a spec. */
export function generatedPlugin(spec: GeneratedSpec): StatePlugin<Section, Section> {
  const m = spec.mapping;
  const readOnly = (what: string): Error =>
    new Error(
      `${spec.name} is read-only for ${what}: ${m === undefined ? `${spec.service} has no semantic mapping` : 'its mapping names no apply_method for it'}`,
    );
  const query = (ctx: PluginContext): Promise<Section> =>
    m === undefined ? queryAll(spec, ctx.bus) : queryKeys(spec, ctx.bus, Object.keys(m.keys));

  return {
    async available(ctx) {
      try {
        if (await ctx.bus.reachable(spec.service)) return { available: true };
        return {
          available: false,
          reason: `${spec.service} is neither running nor activatable on the system bus`,
        };
      } catch (e) {
        return { available: false, reason: e instanceof Error ? e.message : String(e) };
      }
    },

    query,

    diff(current, desired) {
      const resources: ResourceDiff[] = [];
      if (m === undefined) {
        for (const [path, ifaces] of Object.entries(desired)) {
          for (const [iface, props] of Object.entries((ifaces ?? {}) as Section)) {
            for (const [prop, want] of Object.entries((props ?? {}) as Section)) {
              const have = (((current[path] ?? {}) as Section)[iface] as Section | undefined)?.[prop];
              if (!sameJson(have, want)) throw readOnly(`${path} ${iface}.${prop}`);
              resources.push({ id: `${path} ${iface}.${prop}`, action: 'noop', changes: [] });
            }
          }
        }
        return Promise.resolve({ resources });
      }
      const keys = Object.keys(desired);
      for (const key of keys) {
        const k = m.keys[key] as SpecKey;
        const want = desired[key];
        const have = current[key];
        if (inSync(k, have, want)) {
          resources.push({ id: key, action: 'noop', changes: [] });
          continue;
        }
        const method = want === null ? k.remove : k.apply;
        if (method === undefined || k.strategy === 'none') throw readOnly(key);
        const protectedName = m.protected.find(
          (p) => JSON.stringify(want ?? null).includes(JSON.stringify(p)) || want === p,
        );
        if (protectedName !== undefined)
          throw new Error(
            `${spec.name}: ${key} would touch ${protectedName}, which the mapping's protected_services protects`,
          );
        const sm = m.methods[method] as SpecMethod;
        resources.push({
          id: key,
          action: have === undefined ? 'create' : want === null ? 'delete' : 'modify',
          changes: [
            { path: pointer('plugins', spec.name, key), before: have, after: valueToApply(k, have, want) },
          ],
          // a method the mapping does not call safe, or that wants a confirmation, runs last and only when confirmed
          ...(!sm.safe || sm.requiresConfirmation || (!sm.idempotent && m.rollback === undefined)
            ? { irreversible: true }
            : {}),
        });
      }
      const changing = resources.filter((r) => r.action !== 'noop').length;
      if (m.maxBatch !== undefined && changing > m.maxBatch)
        throw new Error(
          `${spec.name}: ${changing} changes, more than the mapping's max_batch_size ${m.maxBatch}`,
        );
      return Promise.resolve({ resources });
    },

    async checkpoint(desired, ctx) {
      const keys = m === undefined ? [] : Object.keys(desired);
      return m === undefined ? {} : queryKeys(spec, ctx.bus, keys);
    },

    async apply(diff: SectionDiff, _desired, ctx) {
      if (m === undefined) {
        if (diff.resources.some((r) => r.action !== 'noop')) throw readOnly('any change');
        return { changed: 0 };
      }
      const todo = diff.resources.filter((r) => r.action !== 'noop');
      if (todo.length === 0) return { changed: 0 };
      if (m.minDiskMb !== undefined) {
        const s = statfsSync('/');
        const freeMb = (s.bavail * s.bsize) / 1024 / 1024;
        if (freeMb < m.minDiskMb)
          throw new Error(`${spec.name}: ${freeMb.toFixed(0)} MB free, the mapping wants ${m.minDiskMb}`);
      }
      if (m.preApply !== undefined) await call(spec, ctx.bus, m.methods[m.preApply] as SpecMethod, undefined);
      let changed = 0;
      for (const r of todo) {
        ctx.signal.throwIfAborted();
        const k = m.keys[r.id];
        if (k === undefined) throw new Error(`${spec.name}: no key ${r.id} in its mapping`);
        const value = r.changes[0]?.after;
        const id = value === null || r.action === 'delete' ? k.remove : k.apply;
        if (id === undefined) throw readOnly(r.id);
        const sm = m.methods[id] as SpecMethod;
        if (sm.preCheck !== undefined) await call(spec, ctx.bus, m.methods[sm.preCheck] as SpecMethod, value);
        await call(spec, ctx.bus, sm, value);
        ctx.progress(`${r.id} set through ${sm.member}`);
        changed++;
      }
      if (m.postApply !== undefined)
        await call(spec, ctx.bus, m.methods[m.postApply] as SpecMethod, undefined);
      return { changed };
    },

    async verify(desired, ctx) {
      const drift: VerifyResult['drift'] = [];
      if (m === undefined) {
        const current = await queryAll(spec, ctx.bus);
        for (const [path, ifaces] of Object.entries(desired))
          for (const [iface, props] of Object.entries((ifaces ?? {}) as Section))
            for (const [prop, want] of Object.entries((props ?? {}) as Section)) {
              const have = (((current[path] ?? {}) as Section)[iface] as Section | undefined)?.[prop];
              if (!sameJson(have, want))
                drift.push({
                  path: pointer('plugins', spec.name, path, iface, prop),
                  expected: want,
                  actual: have,
                });
            }
        return { drift };
      }
      const current = await queryKeys(spec, ctx.bus, Object.keys(desired));
      for (const [key, want] of Object.entries(desired)) {
        const k = m.keys[key] as SpecKey;
        if (!inSync(k, current[key], want))
          drift.push({ path: pointer('plugins', spec.name, key), expected: want, actual: current[key] });
      }
      return { drift };
    },

    async rollback(checkpoint, ctx) {
      if (m === undefined) return;
      const current = await queryKeys(spec, ctx.bus, Object.keys(checkpoint));
      for (const [key, was] of Object.entries(checkpoint)) {
        const k = m.keys[key];
        if (k === undefined || sameJson(current[key], was)) continue;
        const id = m.rollback ?? k.apply;
        if (id === undefined) continue;
        await call(spec, ctx.bus, m.methods[id] as SpecMethod, was);
      }
    },
  };
}

/** Whether current already is what desired asks, by the key's diff strategy. */
function inSync(k: SpecKey, have: unknown, want: unknown): boolean {
  switch (k.strategy) {
    case 'set_difference':
      return (
        Array.isArray(have) &&
        Array.isArray(want) &&
        have.length === want.length &&
        want.every((w) => have.some((h) => sameJson(h, w)))
      );
    case 'merge_strategy':
    case 'service_state_diff':
      if (isObject(have) && isObject(want))
        return Object.entries(want).every(([n, v]) => sameJson(have[n], v));
      if (Array.isArray(have) && Array.isArray(want))
        return want.every((w) => have.some((h) => sameJson(h, w)));
      return sameJson(have, want);
    default:
      return sameJson(have, want);
  }
}

/** What the apply method is given: the desired value, or for merges the current one with desired laid over it. */
function valueToApply(k: SpecKey, have: unknown, want: unknown): unknown {
  if (k.strategy === 'merge_strategy' || k.strategy === 'service_state_diff') {
    if (isObject(have) && isObject(want)) return { ...have, ...want };
    if (Array.isArray(have) && Array.isArray(want))
      return [...have, ...want.filter((w) => !have.some((h) => sameJson(h, w)))];
  }
  return want;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

async function call(spec: GeneratedSpec, bus: PluginBus, sm: SpecMethod, value: unknown): Promise<unknown[]> {
  const body: unknown[] = [];
  const types = sm.signature === '' ? [] : splitTypes(sm);
  for (const [i, a] of sm.args.entries()) {
    const t = parseSingleType(types[i] ?? '');
    if (!t.ok) throw new Error(`${spec.name}: ${sm.member}: argument ${i}: ${t.reason}`);
    const r = fromJson(t.type, 'value' in a ? value : a.constant);
    if (!r.ok) throw new Error(`${spec.name}: ${sm.member}: argument ${i}: ${r.reason}`);
    body.push(r.value);
  }
  return bus.call({
    destination: spec.service,
    path: sm.path,
    interface: sm.interface,
    member: sm.member,
    signature: sm.signature,
    body,
    ...(spec.mapping?.timeoutMs !== undefined ? { timeoutMs: spec.mapping.timeoutMs } : {}),
  });
}

/** The method's argument types, one complete type each (the spec keeps the joined signature). */
function splitTypes(sm: SpecMethod): string[] {
  const out: string[] = [];
  let rest = sm.signature;
  while (rest.length > 0) {
    let n = 1;
    for (; n <= rest.length; n++) if (parseSingleType(rest.slice(0, n)).ok) break;
    out.push(rest.slice(0, n));
    rest = rest.slice(n);
  }
  return out;
}

async function queryAll(spec: GeneratedSpec, bus: PluginBus): Promise<Section> {
  const out: Section = {};
  for (const obj of spec.objects) {
    const ifaces: Section = {};
    for (const i of obj.interfaces) {
      if (i.properties.length === 0) continue;
      const all = await readProperties(
        spec,
        bus,
        obj.path,
        i.name,
        i.properties.map((p) => p.name),
      );
      const props: Section = {};
      for (const p of i.properties) if (Object.hasOwn(all, p.name)) props[p.name] = toJson(all[p.name]);
      ifaces[i.name] = props;
    }
    out[obj.path] = ifaces;
  }
  return out;
}

async function queryKeys(spec: GeneratedSpec, bus: PluginBus, keys: string[]): Promise<Section> {
  const m = spec.mapping;
  if (m === undefined) return {};
  const byInterface = new Map<string, Promise<Record<string, unknown>>>();
  const out: Section = {};
  for (const key of keys) {
    const k = m.keys[key];
    if (k === undefined) continue;
    if ('property' in k.query) {
      const q = k.query;
      const at = `${q.path} ${q.interface}`;
      let all = byInterface.get(at);
      if (all === undefined) {
        const names = Object.values(m.keys).flatMap((kk) =>
          'property' in kk.query && kk.query.interface === q.interface && kk.query.path === q.path
            ? [kk.query.property]
            : [],
        );
        all = readProperties(spec, bus, q.path, q.interface, names);
        byInterface.set(at, all);
      }
      const v = (await all)[q.property];
      if (v !== undefined) out[key] = toJson(v);
    } else {
      const [v] = await call(spec, bus, m.methods[k.query.method] as SpecMethod, undefined);
      out[key] = toJson(v);
    }
  }
  return out;
}

/**
 * The properties of one interface: GetAll, or when the service fails that (timedated's NTP
 * properties need systemd), each property with Get, leaving out those it cannot read.
 */
async function readProperties(
  spec: GeneratedSpec,
  bus: PluginBus,
  path: string,
  iface: string,
  names: string[],
): Promise<Record<string, unknown>> {
  try {
    return await bus.getAll(spec.service, path, iface);
  } catch (e) {
    if (
      (e as { code?: unknown }).code === 'PermissionDenied' ||
      /may not call/.test(String((e as Error).message))
    )
      throw e;
    const out: Record<string, unknown> = {};
    for (const name of names) {
      try {
        const [v] = await bus.call({
          destination: spec.service,
          path,
          interface: 'org.freedesktop.DBus.Properties',
          member: 'Get',
          signature: 'ss',
          body: [iface, name],
        });
        out[name] = v;
      } catch {
        // unreadable now: not part of the state
      }
    }
    return out;
  }
}
