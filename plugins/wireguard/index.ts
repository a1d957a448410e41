import { randomUUID } from 'node:crypto';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { z } from 'zod';
import {
  definePlugin,
  sameJson,
  type Availability,
  type Change,
  type PluginContext,
  type ResourceDiff,
  type SectionDiff,
  type StatePlugin,
  type VerifyResult,
} from '../../main/sdk/index.js';
import {
  createInterface,
  deleteInterface,
  isUp,
  readDevices,
  readLink,
  syncLink,
  syncConfig,
  type DeviceConfig,
  type DeviceTools,
  type DeviceSecrets,
  type DeviceInterface,
  type DevicePeer,
} from './device.js';
import { wantedInterfaces, WireguardSection, type WantedInterface, type WantedPeer } from './desired.js';
import { publicKeyOf, readKeyFile, secretDigest } from './keys.js';

/** What query reports: every WireGuard interface of the host, public keys only. */
export interface WireguardState {
  interfaces: Record<string, DeviceInterface>;
}

/** Enough to put each interface the document names back as it was (no secret: those stay in memory). */
interface WireguardCheckpoint {
  /** The in-memory stash of this checkpoint's private and preshared keys (lost if the core restarts). */
  stash: string;
  interfaces: { name: string; existed: boolean; state?: DeviceInterface }[];
}

type Stashed = DeviceSecrets;

const DEFAULT_KEY_DIRS = ['/etc/op-dbus/keys', '/etc/wireguard'];
const stashes = new Map<string, Map<string, Stashed>>();
const MAX_STASHES = 2;

function wipeSecrets(s: DeviceSecrets): void {
  s.privateKey?.fill(0);
  for (const k of s.presharedKeys.values()) k.fill(0);
}

function dropStash(id: string): void {
  for (const s of stashes.get(id)?.values() ?? []) wipeSecrets(s);
  stashes.delete(id);
}

interface Settings {
  keyDirs: string[];
  tools: DeviceTools;
}

/** The plugin's [config], laid over by the core configuration's [plugins.wireguard]. */
function settings(ctx: PluginContext, withSignal = false): Settings {
  const c = ctx.config;
  const dirs = c['key_dirs'];
  const keyDirs =
    Array.isArray(dirs) && dirs.every((d): d is string => typeof d === 'string' && isAbsolute(d))
      ? dirs
      : DEFAULT_KEY_DIRS;
  const uapi = c['uapi_dir'];
  const impl = c['implementation'];
  return {
    keyDirs,
    tools: {
      ...(typeof uapi === 'string' && uapi !== '' ? { uapiDir: uapi } : {}),
      implementation: impl === 'kernel' || impl === 'wireguard-go' ? impl : 'auto',
      ...(withSignal ? { signal: ctx.signal } : {}),
    },
  };
}

async function query(ctx: PluginContext): Promise<WireguardState> {
  return { interfaces: Object.fromEntries(await readDevices(settings(ctx).tools)) };
}

function onPath(tool: string): boolean {
  return (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const ifaceOf = (resourceId: string): string => resourceId.split(' ')[0] ?? resourceId;
const peerId = (iface: string, label: string): string => `${iface} peer ${label}`;

/** The peer as the device would hold it once applied (a preshared key as its digest). */
function wantedPeerState(p: WantedPeer, keyDirs: readonly string[]): DevicePeer {
  return {
    public_key: p.public_key,
    ...(p.endpoint !== undefined ? { endpoint: p.endpoint } : {}),
    allowed_ips: p.allowed_ips,
    ...(p.persistent_keepalive !== undefined ? { persistent_keepalive: p.persistent_keepalive } : {}),
    ...(p.presharedKeyFile !== undefined
      ? { preshared_key: secretDigest(readKeyFile(p.presharedKeyFile, keyDirs)) }
      : {}),
  };
}

/** The changes that make one peer `want` (endpoint only when the document names one: peers roam). */
function peerChanges(at: string, have: DevicePeer | undefined, want: DevicePeer): Change[] {
  const out: Change[] = [];
  const field = (name: keyof DevicePeer, a: unknown, b: unknown, path = `${at}/${name}`): void => {
    if (!sameJson(a ?? null, b ?? null)) out.push({ path, before: a, after: b });
  };
  field('public_key', have?.public_key, want.public_key);
  if (want.endpoint !== undefined) field('endpoint', have?.endpoint, want.endpoint);
  field('allowed_ips', have?.allowed_ips, want.allowed_ips);
  field('persistent_keepalive', have?.persistent_keepalive, want.persistent_keepalive);
  field('preshared_key', have?.preshared_key, want.preshared_key);
  return out;
}

/** The interface's own changes: its key (shown as public keys), port, addresses, MTU. */
function interfaceChanges(
  w: WantedInterface,
  have: DeviceInterface | undefined,
  publicKey: string,
): Change[] {
  const out: Change[] = [];
  if (have?.public_key !== publicKey) out.push({ path: w.keyAt, before: have?.public_key, after: publicKey });
  // a mesh node's own address and port are fields of its node
  const own = w.self !== undefined ? w.keyAt.replace(/\/public_key$/, '') : w.at;
  if (w.listen_port !== undefined && have?.listen_port !== w.listen_port) {
    out.push({ path: `${own}/listen_port`, before: have?.listen_port, after: w.listen_port });
  }
  if (w.address !== undefined && !sameJson(have?.address ?? [], w.address)) {
    out.push({ path: `${own}/address`, before: have?.address, after: w.address });
  }
  if (w.mtu !== undefined && have?.mtu !== w.mtu)
    out.push({ path: `${w.at}/mtu`, before: have?.mtu, after: w.mtu });
  return out;
}

/** Every difference between what w asks and the device, as resources: the interface, then each peer. */
function interfaceDiff(
  w: WantedInterface,
  have: DeviceInterface | undefined,
  keyDirs: readonly string[],
): ResourceDiff[] {
  const publicKey = publicKeyOf(readKeyFile(w.privateKeyFile, keyDirs));
  const own = interfaceChanges(w, have, publicKey);
  const resources: ResourceDiff[] = [
    { id: w.name, action: have === undefined ? 'create' : own.length > 0 ? 'modify' : 'noop', changes: own },
  ];
  const current = new Map((have?.peers ?? []).map((p) => [p.public_key, p]));
  for (const p of w.peers) {
    const want = wantedPeerState(p, keyDirs);
    const was = current.get(p.public_key);
    current.delete(p.public_key);
    const changes = peerChanges(p.at, was, want);
    resources.push({
      id: peerId(w.name, p.label),
      action: was === undefined ? 'create' : changes.length > 0 ? 'modify' : 'noop',
      changes,
    });
  }
  // an interface the document names is owned whole: a peer it does not list goes
  const listAt = w.self !== undefined ? `${w.at}/nodes` : `${w.at}/peers`;
  for (const [key, p] of current) {
    resources.push({ id: peerId(w.name, key), action: 'delete', changes: [{ path: listAt, before: p }] });
  }
  return resources;
}

/** The mesh node this host is must carry this host's public key: a document that says otherwise is refused. */
function checkSelfKey(w: WantedInterface, section: WireguardSection, publicKey: string): void {
  if (w.self === undefined) return;
  const node = section.mesh?.[w.name]?.nodes.find((n) => n.name === w.self);
  if (node !== undefined && node.public_key !== publicKey) {
    throw new Error(
      `${w.keyAt}: node ${w.self}'s public_key is not the public key of this host's key file (${publicKey}); ` +
        'after rotating a key, put its new public key into the document',
    );
  }
}

/** The device configuration w asks for; its secrets are read from their files now. */
function deviceConfig(w: WantedInterface, keyDirs: readonly string[], privateKey: Buffer): DeviceConfig {
  return {
    privateKey,
    ...(w.listen_port !== undefined ? { listenPort: w.listen_port } : {}),
    peers: w.peers.map((p) => ({
      public_key: p.public_key,
      ...(p.endpoint !== undefined ? { endpoint: p.endpoint } : {}),
      allowed_ips: p.allowed_ips,
      ...(p.persistent_keepalive !== undefined ? { persistent_keepalive: p.persistent_keepalive } : {}),
      ...(p.presharedKeyFile !== undefined ? { presharedKey: readKeyFile(p.presharedKeyFile, keyDirs) } : {}),
    })),
  };
}

/**
 * The interface's addresses, MTU and up flag as the apply starts, without asking `ip`: the engine
 * checked just before the apply that the host is as the plan saw it, so the diff's `before` values
 * are the device's (a change absent from the diff: the device already has what w asks); whether it
 * is up comes from sysfs, or from `ip` when sysfs cannot say.
 */
async function linkBefore(
  tools: DeviceTools,
  w: WantedInterface,
  diff: SectionDiff,
): Promise<{ created: boolean; address: string[]; mtu?: number; up?: boolean }> {
  const r = diff.resources.find((x) => x.id === w.name);
  if (r?.action === 'create') return { created: true, address: [], up: false };
  const own = w.self !== undefined ? w.keyAt.replace(/\/public_key$/, '') : w.at;
  const address = r?.changes.find((c) => c.path === `${own}/address`);
  const mtu = r?.changes.find((c) => c.path === `${w.at}/mtu`);
  const up = isUp(w.name);
  if (up === undefined) {
    const link = await readLink(tools, w.name);
    if (link === undefined) return { created: true, address: [], up: false };
    return { created: false, ...link };
  }
  return {
    created: false,
    address: address !== undefined ? ((address.before as string[] | undefined) ?? []) : (w.address ?? []),
    ...(mtu !== undefined
      ? typeof mtu.before === 'number'
        ? { mtu: mtu.before }
        : {}
      : w.mtu !== undefined
        ? { mtu: w.mtu }
        : {}),
    up,
  };
}

function wipe(config: DeviceConfig): void {
  config.privateKey?.fill(0);
  for (const p of config.peers) if (p.presharedKey instanceof Buffer) p.presharedKey.fill(0);
}

/** The wireguard plugin: WireGuard interfaces and meshes through `wg` and `ip` (docs/wireguard.md). */
const wireguardPlugin: StatePlugin<WireguardSection | WireguardState, WireguardCheckpoint> = {
  async available(ctx: PluginContext): Promise<Availability> {
    const { tools } = settings(ctx);
    // asked before every plan: a look at PATH, not a process
    const needed = ['wg', 'ip', ...(tools.implementation === 'wireguard-go' ? ['wireguard-go'] : [])];
    const missing = needed.filter((tool) => !onPath(tool));
    if (missing.length > 0) {
      return {
        available: false,
        reason: `not found on PATH: ${missing.join(', ')} (install wireguard-tools, iproute2)`,
      };
    }
    if (tools.uapiDir !== undefined && !existsSync(tools.uapiDir)) {
      return {
        available: false,
        reason: `the UAPI socket directory ${tools.uapiDir} ([plugins.wireguard] uapi_dir) does not exist`,
      };
    }
    return { available: true };
  },

  query,

  diff(current, desired, ctx: PluginContext): Promise<SectionDiff> {
    const { keyDirs } = settings(ctx);
    const section = desired as WireguardSection;
    const devices = (current as WireguardState).interfaces;
    const resources: ResourceDiff[] = [];
    for (const w of wantedInterfaces(section, keyDirs)) {
      const diff = interfaceDiff(w, devices[w.name], keyDirs);
      const keyChange = diff[0]?.changes.find((c) => c.path === w.keyAt);
      checkSelfKey(w, section, (keyChange?.after as string | undefined) ?? devices[w.name]?.public_key ?? '');
      resources.push(...diff);
    }
    return Promise.resolve({ resources });
  },

  async checkpoint(desired, ctx: PluginContext): Promise<WireguardCheckpoint> {
    const { keyDirs, tools } = settings(ctx, true);
    const secrets = new Map<string, DeviceSecrets>();
    const devices = await readDevices(tools, secrets);
    const stash = new Map<string, Stashed>();
    const interfaces: WireguardCheckpoint['interfaces'] = [];
    for (const w of wantedInterfaces(desired as WireguardSection, keyDirs)) {
      const state = devices.get(w.name);
      interfaces.push({
        name: w.name,
        existed: state !== undefined,
        ...(state !== undefined ? { state } : {}),
      });
      const kept = secrets.get(w.name);
      if (kept !== undefined) stash.set(w.name, kept);
      secrets.delete(w.name);
    }
    for (const other of secrets.values()) wipeSecrets(other);
    const id = randomUUID();
    stashes.set(id, stash);
    // a rollback comes within the same apply: older stashes belong to applies that ended
    for (const old of [...stashes.keys()].slice(0, -MAX_STASHES)) dropStash(old);
    return { stash: id, interfaces };
  },

  async apply(diff: SectionDiff, desired, ctx: PluginContext): Promise<{ changed: number }> {
    const { keyDirs, tools } = settings(ctx, true);
    const touched = new Set(diff.resources.filter((r) => r.action !== 'noop').map((r) => ifaceOf(r.id)));
    let changed = 0;
    for (const w of wantedInterfaces(desired as WireguardSection, keyDirs)) {
      if (!touched.has(w.name)) continue;
      ctx.signal.throwIfAborted();
      const privateKey = readKeyFile(w.privateKeyFile, keyDirs);
      const planned = diff.resources
        .find((r) => r.id === w.name)
        ?.changes.find((c) => c.path === w.keyAt)?.after;
      if (planned !== undefined && planned !== publicKeyOf(privateKey)) {
        privateKey.fill(0);
        throw new Error(`${w.keyAt}: the key file ${w.privateKeyFile} changed since the plan; plan again`);
      }
      const config = deviceConfig(w, keyDirs, privateKey);
      try {
        const have = await linkBefore(tools, w, diff);
        if (have.created) {
          const how = await createInterface(tools, w.name);
          ctx.progress(`${w.name} created (${how})`);
        }
        await syncConfig(tools, w.name, config);
        await syncLink(tools, w.name, have, {
          ...(w.address !== undefined ? { address: w.address } : {}),
          ...(w.mtu !== undefined ? { mtu: w.mtu } : {}),
        });
      } catch (e) {
        throw new Error(`interface ${w.name} (${w.at}): ${(e as Error).message}`);
      } finally {
        wipe(config);
      }
      const n = diff.resources.filter((r) => r.action !== 'noop' && ifaceOf(r.id) === w.name).length;
      ctx.progress(`${w.name}: ${n} change(s) applied`);
      changed += n;
    }
    return { changed };
  },

  async verify(desired, ctx: PluginContext): Promise<VerifyResult> {
    const { keyDirs, tools } = settings(ctx);
    const devices = await readDevices(tools);
    const drift: VerifyResult['drift'] = [];
    for (const w of wantedInterfaces(desired as WireguardSection, keyDirs)) {
      const have = devices.get(w.name);
      if (have === undefined) {
        drift.push({ path: w.at, expected: 'a WireGuard interface', actual: 'absent' });
        continue;
      }
      for (const r of interfaceDiff(w, have, keyDirs)) {
        if (r.action === 'delete') {
          const c = r.changes[0];
          drift.push({
            path: c?.path ?? w.at,
            expected: 'not a peer',
            actual: (c?.before as DevicePeer).public_key,
          });
        } else if (r.action === 'create') {
          drift.push({
            path: r.changes[0]?.path.replace(/\/public_key$/, '') ?? w.at,
            expected: 'a peer',
            actual: 'absent',
          });
        } else {
          for (const c of r.changes) drift.push({ path: c.path, expected: c.after, actual: c.before });
        }
      }
    }
    return { drift };
  },

  async rollback(checkpoint: WireguardCheckpoint, ctx: PluginContext): Promise<void> {
    const { tools } = settings(ctx);
    const stash = stashes.get(checkpoint.stash);
    const devices = await readDevices(tools);
    const failures: string[] = [];
    for (const cp of [...checkpoint.interfaces].reverse()) {
      try {
        if (!cp.existed || cp.state === undefined) {
          if (devices.has(cp.name)) await deleteInterface(tools, cp.name);
          continue;
        }
        const kept = stash?.get(cp.name);
        if (kept === undefined)
          ctx.log.warn(
            `rollback of ${cp.name}: its earlier private and preshared keys were in the memory of a core that stopped; the device keeps the current ones`,
          );
        const config: DeviceConfig = {
          ...(kept?.privateKey !== undefined ? { privateKey: kept.privateKey } : {}),
          ...(cp.state.listen_port > 0 ? { listenPort: cp.state.listen_port } : {}),
          peers: cp.state.peers.map((p) => ({
            public_key: p.public_key,
            ...(p.endpoint !== undefined ? { endpoint: p.endpoint } : {}),
            allowed_ips: p.allowed_ips,
            ...(p.persistent_keepalive !== undefined ? { persistent_keepalive: p.persistent_keepalive } : {}),
            ...(p.preshared_key !== undefined
              ? { presharedKey: kept?.presharedKeys.get(p.public_key) ?? ('keep' as const) }
              : {}),
          })),
        };
        if (!devices.has(cp.name)) await createInterface(tools, cp.name);
        await syncConfig(tools, cp.name, config);
        const now = devices.get(cp.name) ?? { address: [] };
        await syncLink(tools, cp.name, now, {
          address: cp.state.address,
          ...(cp.state.mtu !== undefined ? { mtu: cp.state.mtu } : {}),
        });
      } catch (e) {
        failures.push(`${cp.name}: ${(e as Error).message}`);
      }
    }
    dropStash(checkpoint.stash);
    if (failures.length > 0) throw new Error(`rollback failed: ${failures.join('; ')}`);
  },
};

export default definePlugin({
  schema: z.toJSONSchema(WireguardSection, { io: 'input' }) as Record<string, unknown>,
  plugin: wireguardPlugin,
});
