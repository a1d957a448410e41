import { z } from 'zod';
import {
  definePlugin,
  type Availability,
  type PluginContext,
  type SectionDiff,
  type StatePlugin,
  type VerifyResult,
} from '../../main/sdk/index.js';
import { NetSection, type Interface } from './model.js';
import { readOvs, withOvsdb } from './ovs-state.js';
import { transactAndWait, type Operation } from './ovsdb.js';
import {
  removal,
  reconcile,
  wantOfHost,
  wantsOf,
  type Host,
  type ResourcePlan,
  type Want,
} from './reconcile.js';
import { defaultRoute, ip, ipv4Addresses, links } from './rtnl.js';

// The net plugin: OVS bridges, ports, internal interfaces and bonds through OVSDB (RFC 7047, our
// own client: never ovs-vsctl), Linux bridges, IPv4 addresses and the default route through
// rtnetlink (`ip -json`). What the document names is managed; `prune` also removes the ports of
// its bridges it does not name. Addresses set through netlink do not survive a reboot: the core's
// converge puts them back.

interface NetConfig {
  dbSocket: string;
  datapathType: string;
}

interface NetCheckpoint {
  entries: { want: Want; was?: Want }[];
}

function configOf(ctx: PluginContext): NetConfig {
  const c = ctx.config;
  return {
    dbSocket: typeof c['db_socket'] === 'string' ? c['db_socket'] : '/var/run/openvswitch/db.sock',
    datapathType: typeof c['datapath_type'] === 'string' ? c['datapath_type'] : '',
  };
}

/** Everything a plan needs of the host, read once. */
async function readHost(cfg: NetConfig): Promise<Host> {
  const [ovs, l, addresses, route] = await Promise.all([
    withOvsdb(cfg.dbSocket, readOvs).then(
      (s) => ({ snapshot: s, problem: undefined }),
      (e: unknown) => ({ snapshot: undefined, problem: e instanceof Error ? e.message : String(e) }),
    ),
    links(),
    ipv4Addresses(),
    defaultRoute(),
  ]);
  return {
    ovs: ovs.snapshot,
    ...(ovs.problem !== undefined ? { ovsProblem: ovs.problem } : {}),
    links: l,
    addresses,
    route,
  };
}

/** The host's interfaces in the section's shape: OVS bridges and their non-trivial ports, Linux bridges. */
function sectionOf(host: Host): NetSection {
  const interfaces: Interface[] = [];
  const ipv4Of = (name: string): Interface['ipv4'] => {
    const address = host.addresses.get(name) ?? [];
    return {
      enabled: address.length > 0,
      dhcp: false,
      address,
      ...(host.route?.dev === name ? { gateway: host.route.gateway } : {}),
    };
  };
  for (const br of host.ovs?.bridges.values() ?? []) {
    interfaces.push({
      name: br.name,
      type: 'ovs-bridge',
      ports: br.ports.filter((p) => p !== br.name),
      ipv4: ipv4Of(br.name),
    });
    for (const p of br.ports) {
      if (p === br.name) continue;
      const port = host.ovs?.ports.get(p);
      if (port === undefined) continue;
      const internal =
        port.interfaces.length === 1 &&
        host.ovs?.interfaces.get(port.interfaces[0] ?? '')?.type === 'internal';
      const type = port.interfaces.length > 1 ? 'ovs-bond' : internal ? 'ovs-internal' : 'ovs-port';
      interfaces.push({
        name: p,
        type,
        bridge: br.name,
        ...(type === 'ovs-bond' ? { ports: port.interfaces } : {}),
        ...(port.tag !== undefined ? { tag: port.tag } : {}),
        ...(port.trunks.length > 0 ? { trunks: port.trunks } : {}),
        ...(port.bond_mode !== undefined ? { bond_mode: port.bond_mode as Interface['bond_mode'] } : {}),
        ...(port.lacp !== undefined ? { lacp: port.lacp as Interface['lacp'] } : {}),
        ...(internal ? { ipv4: ipv4Of(p) } : {}),
      });
    }
  }
  for (const l of host.links.values()) {
    if (l.kind !== 'bridge') continue;
    interfaces.push({
      name: l.name,
      type: 'linux-bridge',
      ports: [...host.links.values()]
        .filter((x) => x.master === l.name)
        .map((x) => x.name)
        .sort(),
      ipv4: ipv4Of(l.name),
    });
  }
  return { interfaces };
}

/** Runs the steps of plans: one OVSDB transaction (waiting for ovs-vswitchd), then ip, then routes. */
async function runSteps(
  cfg: NetConfig,
  steps: { ovsOps: Operation[]; ipSteps: string[][]; needsLinks?: string[]; routeSteps?: string[][] }[],
  ctx: PluginContext,
): Promise<void> {
  const ops = steps.flatMap((s) => s.ovsOps);
  if (ops.length > 0) await withOvsdb(cfg.dbSocket, (c) => transactAndWait(c, ops));
  ctx.signal.throwIfAborted();
  const needed = steps.flatMap((s) => s.needsLinks ?? []);
  if (needed.length > 0) await waitForLinks(needed, ctx.signal);
  for (const args of steps.flatMap((s) => s.ipSteps)) await ip(args, ctx.signal);
  for (const args of steps.flatMap((s) => s.routeSteps ?? [])) await ip(args, ctx.signal);
}

/** ovs-vswitchd creates an internal port's device after cur_cfg moves; wait for it (5 s at most). */
async function waitForLinks(names: readonly string[], signal: AbortSignal): Promise<void> {
  const until = Date.now() + 5_000;
  for (;;) {
    const have = await links();
    const missing = names.filter((n) => !have.has(n));
    if (missing.length === 0) return;
    if (Date.now() > until) throw new Error(`${missing.join(', ')} did not appear on the host`);
    signal.throwIfAborted();
    await new Promise((r) => setTimeout(r, 25));
  }
}

function plansOf(desired: NetSection, host: Host, cfg: NetConfig): ResourcePlan[] {
  return reconcile(wantsOf(desired), host, { prune: desired.prune === true, datapathType: cfg.datapathType });
}

const netPlugin: StatePlugin<NetSection, NetCheckpoint> = {
  async available(): Promise<Availability> {
    try {
      await ip(['-json', 'link', 'show', 'lo']);
      return { available: true };
    } catch (e) {
      return { available: false, reason: e instanceof Error ? e.message : String(e) };
    }
  },

  async query(ctx) {
    return sectionOf(await readHost(configOf(ctx)));
  },

  async diff(_current, desired, ctx): Promise<SectionDiff> {
    // current in the section's shape cannot carry OVSDB uuids or device kinds: read the host itself
    const plans = plansOf(desired, await readHost(configOf(ctx)), configOf(ctx));
    return {
      resources: plans.map((p) => ({
        id: p.id,
        action: p.action,
        changes: p.changes,
        ...(p.error !== undefined ? { error: p.error } : {}),
      })),
    };
  },

  async checkpoint(desired, ctx) {
    const host = await readHost(configOf(ctx));
    return {
      entries: wantsOf(desired).map((want) => {
        const was = wantOfHost(want, host);
        return was === undefined ? { want } : { want, was };
      }),
    };
  },

  async apply(diff, desired, ctx) {
    const cfg = configOf(ctx);
    const selected = new Set(diff.resources.filter((r) => r.action !== 'noop').map((r) => r.id));
    const plans = plansOf(desired, await readHost(cfg), cfg).filter((p) => selected.has(p.id));
    const failed = plans.filter((p) => p.error !== undefined);
    if (failed.length > 0) throw new Error(failed.map((p) => p.error).join('; '));
    await runSteps(cfg, plans, ctx);
    for (const p of plans) if (p.changes.length > 0) ctx.progress(`${p.id}: ${p.changes.length} change(s)`);
    return { changed: plans.filter((p) => p.changes.length > 0).length };
  },

  async verify(desired, ctx): Promise<VerifyResult> {
    const cfg = configOf(ctx);
    const drift: VerifyResult['drift'] = [];
    for (const p of plansOf(desired, await readHost(cfg), cfg)) {
      for (const c of p.changes) drift.push({ path: c.path, expected: c.after, actual: c.before });
    }
    return { drift };
  },

  async rollback(checkpoint, ctx) {
    const cfg = configOf(ctx);
    const host = await readHost(cfg);
    const restore = checkpoint.entries.flatMap((e) => (e.was === undefined ? [] : [e.was]));
    const restored = reconcile(restore, host, { prune: true, datapathType: cfg.datapathType }).filter(
      (p) => p.error === undefined,
    );
    // ports before bridges: a port of a bridge that goes too is gone with it either way
    const absent = checkpoint.entries.filter((e) => e.was === undefined).map((e) => e.want);
    const order = (w: Want): number => (w.type === 'ovs-bridge' || w.type === 'linux-bridge' ? 1 : 0);
    const removals = absent.sort((a, b) => order(a) - order(b)).map((w) => removal(w, host));
    await runSteps(cfg, [...restored, ...removals], ctx);
  },
};

export default definePlugin({
  schema: z.toJSONSchema(NetSection, { io: 'input' }) as Record<string, unknown>,
  plugin: netPlugin,
});
