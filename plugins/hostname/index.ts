import { z } from 'zod';
import {
  definePlugin,
  pointer,
  type Availability,
  type PluginBus,
  type PluginContext,
  type ResourceDiff,
  type SectionDiff,
  type StatePlugin,
  type VerifyResult,
} from '../../main/sdk/index.js';

const SERVICE = 'org.freedesktop.hostname1';
const PATH = '/org/freedesktop/hostname1';
const IFACE = 'org.freedesktop.hostname1';

const label = '(?!-)[A-Za-z0-9-]{1,63}(?<!-)';
/** "" (remove it) or dot-separated labels; a JSON Schema pattern, so it is data the engine checks with ajv. */
const hostname = new RegExp(`^$|^${label}(\\.${label})*$`);

/** The `hostname` section: each key maps to one hostname1 property and its setter. */
export const HostnameSection = z
  .object({
    static_hostname: z
      .string()
      .max(64)
      .regex(hostname)
      .meta({
        'x-error':
          'not a valid hostname (letters, digits and "-" in dot-separated labels of 1-63 characters)',
      })
      .optional()
      .describe('The static hostname (/etc/hostname); "" removes it.'),
    pretty_hostname: z
      .string()
      .max(255)
      .optional()
      .describe('A free-form name for people, e.g. "Lennart\'s Laptop".'),
    icon_name: z
      .string()
      .regex(/^[A-Za-z0-9._-]*$/, 'an XDG icon name: letters, digits, ".", "_" and "-"')
      .max(255)
      .optional(),
    chassis: z
      .enum([
        '',
        'desktop',
        'laptop',
        'convertible',
        'server',
        'tablet',
        'handset',
        'watch',
        'embedded',
        'vm',
        'container',
      ])
      .optional(),
    deployment: z
      .string()
      .regex(/^[^\s]*$/, 'no whitespace (e.g. "production", "staging")')
      .max(255)
      .optional(),
    location: z.string().max(255).optional(),
  })
  .strict();
export type HostnameSection = z.infer<typeof HostnameSection>;
type Key = keyof HostnameSection;

/** Our key → the hostname1 property and its setter (each setter takes (s value, b interactive)). */
const PROPERTIES: Record<Key, { property: string; setter: string }> = {
  static_hostname: { property: 'StaticHostname', setter: 'SetStaticHostname' },
  pretty_hostname: { property: 'PrettyHostname', setter: 'SetPrettyHostname' },
  icon_name: { property: 'IconName', setter: 'SetIconName' },
  chassis: { property: 'Chassis', setter: 'SetChassis' },
  deployment: { property: 'Deployment', setter: 'SetDeployment' },
  location: { property: 'Location', setter: 'SetLocation' },
};
const KEYS = Object.keys(PROPERTIES) as Key[];

/** The hostname plugin: systemd-hostnamed's org.freedesktop.hostname1, through the bus its manifest allows. */
const hostnamePlugin: StatePlugin<HostnameSection, HostnameSection> = {
  async available(ctx: PluginContext): Promise<Availability> {
    try {
      if (await ctx.bus.reachable(SERVICE)) return { available: true };
      return { available: false, reason: `${SERVICE} is neither running nor activatable on the system bus` };
    } catch (e) {
      return { available: false, reason: e instanceof Error ? e.message : String(e) };
    }
  },

  query: (ctx) => query(ctx.bus),

  diff(current: HostnameSection, desired: HostnameSection): Promise<SectionDiff> {
    const resources: ResourceDiff[] = [];
    for (const key of KEYS) {
      const want = desired[key];
      if (want === undefined) continue; // only what the document names is managed
      const have = current[key] ?? '';
      resources.push({
        id: key,
        action: have === want ? 'noop' : 'modify',
        changes:
          have === want ? [] : [{ path: pointer('plugins', 'hostname', key), before: have, after: want }],
      });
    }
    return Promise.resolve({ resources });
  },

  async checkpoint(desired: HostnameSection, ctx: PluginContext): Promise<HostnameSection> {
    const current = await query(ctx.bus);
    const cp: HostnameSection = {};
    for (const key of KEYS)
      if (desired[key] !== undefined) (cp as Record<Key, string>)[key] = current[key] ?? '';
    return cp;
  },

  async apply(
    diff: SectionDiff,
    _desired: HostnameSection,
    ctx: PluginContext,
  ): Promise<{ changed: number }> {
    let changed = 0;
    for (const r of diff.resources) {
      if (r.action === 'noop') continue;
      ctx.signal.throwIfAborted();
      const change = r.changes[0];
      if (change === undefined || typeof change.after !== 'string') continue;
      await set(ctx.bus, r.id as Key, change.after);
      ctx.progress(`${r.id} set`);
      changed++;
    }
    return { changed };
  },

  async verify(desired: HostnameSection, ctx: PluginContext): Promise<VerifyResult> {
    const current = await query(ctx.bus);
    const drift: VerifyResult['drift'] = [];
    for (const key of KEYS) {
      const want = desired[key];
      if (want !== undefined && (current[key] ?? '') !== want) {
        drift.push({ path: pointer('plugins', 'hostname', key), expected: want, actual: current[key] ?? '' });
      }
    }
    return { drift };
  },

  async rollback(checkpoint: HostnameSection, ctx: PluginContext): Promise<void> {
    const current = await query(ctx.bus);
    for (const key of KEYS) {
      const was = checkpoint[key];
      if (was !== undefined && (current[key] ?? '') !== was) await set(ctx.bus, key, was);
    }
  },
};

async function query(bus: PluginBus): Promise<HostnameSection> {
  const props = await bus.getAll(SERVICE, PATH, IFACE);
  const state: HostnameSection = {};
  for (const key of KEYS) {
    const v = props[PROPERTIES[key].property];
    if (typeof v === 'string') (state as Record<Key, string>)[key] = v;
  }
  return state;
}

async function set(bus: PluginBus, key: Key, value: string): Promise<void> {
  await bus.call({
    destination: SERVICE,
    path: PATH,
    interface: IFACE,
    member: PROPERTIES[key].setter,
    signature: 'sb',
    body: [value, false],
  });
}

export default definePlugin({
  schema: z.toJSONSchema(HostnameSection, { io: 'input' }) as Record<string, unknown>,
  plugin: hostnamePlugin,
});
