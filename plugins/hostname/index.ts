import { z } from 'zod';
import type { PluginDiff, ResourceDiff } from '../../main/common/contract/index.js';
import {
  callMethod,
  getAllProperties,
  nameReachable,
  type MessageBus,
} from '../../main/common/dbus/calls.js';
import type {
  ApplyContext,
  Availability,
  PluginVerifyResult,
  StatePlugin,
} from '../../main/service/engine/plugin.js';

const SERVICE = 'org.freedesktop.hostname1';
const PATH = '/org/freedesktop/hostname1';
const IFACE = 'org.freedesktop.hostname1';

const hostnameLabel = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** The `hostname` section: each key maps to one hostname1 property and its setter. */
export const HostnameSection = z
  .object({
    static_hostname: z
      .string()
      .max(64)
      .refine((s) => s === '' || s.split('.').every((l) => hostnameLabel.test(l)), {
        message: 'not a valid hostname (letters, digits and "-" in dot-separated labels of 1-63 characters)',
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

/** The hostname plugin: systemd-hostnamed's org.freedesktop.hostname1 over D-Bus. */
export class HostnamePlugin implements StatePlugin<HostnameSection, HostnameSection> {
  readonly name = 'hostname';
  readonly version = '1.0.0';
  readonly schema = HostnameSection;

  constructor(private readonly bus: () => MessageBus) {}

  async available(): Promise<Availability> {
    try {
      if (await nameReachable(this.bus(), SERVICE)) return { available: true };
      return { available: false, reason: `${SERVICE} is neither running nor activatable on the system bus` };
    } catch (e) {
      return { available: false, reason: e instanceof Error ? e.message : String(e) };
    }
  }

  async query(): Promise<HostnameSection> {
    const props = await getAllProperties(this.bus(), SERVICE, PATH, IFACE);
    const state: HostnameSection = {};
    for (const key of KEYS) {
      const v = props[PROPERTIES[key].property];
      if (typeof v === 'string') (state as Record<Key, string>)[key] = v;
    }
    return state;
  }

  diff(current: HostnameSection, desired: HostnameSection): PluginDiff {
    const resources: ResourceDiff[] = [];
    for (const key of KEYS) {
      const want = desired[key];
      if (want === undefined) continue; // only what the document names is managed
      const have = current[key] ?? '';
      resources.push({
        id: key,
        action: have === want ? 'noop' : 'modify',
        changes: have === want ? [] : [{ path: `/plugins/hostname/${key}`, before: have, after: want }],
      });
    }
    return { plugin: this.name, resources };
  }

  async checkpoint(desired: HostnameSection): Promise<HostnameSection> {
    const current = await this.query();
    const cp: HostnameSection = {};
    for (const key of KEYS)
      if (desired[key] !== undefined) (cp as Record<Key, string>)[key] = current[key] ?? '';
    return cp;
  }

  async apply(diff: PluginDiff, _desired: HostnameSection, ctx: ApplyContext): Promise<{ changed: number }> {
    let changed = 0;
    for (const r of diff.resources) {
      if (r.action === 'noop') continue;
      ctx.signal.throwIfAborted();
      const change = r.changes[0];
      if (change === undefined || typeof change.after !== 'string') continue;
      await this.set(r.id as Key, change.after);
      ctx.progress(`${r.id} set`);
      changed++;
    }
    return { changed };
  }

  async verify(desired: HostnameSection): Promise<PluginVerifyResult> {
    const current = await this.query();
    const drift: PluginVerifyResult['drift'] = [];
    for (const key of KEYS) {
      const want = desired[key];
      if (want !== undefined && (current[key] ?? '') !== want) {
        drift.push({ path: `/plugins/hostname/${key}`, expected: want, actual: current[key] ?? '' });
      }
    }
    return { drift };
  }

  async rollback(checkpoint: HostnameSection): Promise<void> {
    const current = await this.query();
    for (const key of KEYS) {
      const was = checkpoint[key];
      if (was !== undefined && (current[key] ?? '') !== was) await this.set(key, was);
    }
  }

  private async set(key: Key, value: string): Promise<void> {
    await callMethod(this.bus(), {
      destination: SERVICE,
      path: PATH,
      interface: IFACE,
      member: PROPERTIES[key].setter,
      signature: 'sb',
      body: [value, false],
    });
  }
}
