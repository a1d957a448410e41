import { ManagerClient } from '../../main/client/dbus/manager-client.js';
import { BUS_NAME, OBJECT_PATH, type AuditListEntry } from '../../main/common/contract/index.js';
import { callMethod, getAllProperties, type MessageBus } from '../../main/common/dbus/calls.js';
import { PolkitAuthority, type Caller } from '../../main/service/core/authority.js';
import type { BenchCase, BenchGroup, StartedGroup } from '../harness.js';
import { median } from '../statistics.js';
import { withBenchSandbox } from './bench-sandbox.js';

const HOSTNAME1 = {
  service: 'org.freedesktop.hostname1',
  path: '/org/freedesktop/hostname1',
  iface: 'org.freedesktop.hostname1',
};
const BUS_DAEMON = {
  destination: 'org.freedesktop.DBus',
  path: '/org/freedesktop/DBus',
  interface: 'org.freedesktop.DBus',
};
/** apply-one-key flips between these, so every apply really changes the host. */
const PRETTY_VALUES = ['op-dbus bench A', 'op-dbus bench B'] as const;
const DOCUMENT_FILE = 'bench-hostname.jsonc';
/** Audit entries per AuditList call: about 100 KB of plan entries, well below the size that hangs the reply. */
const AUDIT_PAGE = 200;

/** Plan and apply latency of the hostname plugin against the bus's own method round trip. */
export const hostnameGroup: BenchGroup = {
  name: 'hostname',
  description:
    'Plan and apply of the hostname plugin over a private system bus (sandbox: dbus-daemon, polkitd, ' +
    'D-Bus-activated systemd-hostnamed, the core), against one Peer.Ping round trip to the core.',
  baseline: 'bus-ping',
  start: startHostnameGroup,
};

function startHostnameGroup(): Promise<StartedGroup> {
  return withBenchSandbox('opdbus-bench', async ({ bus, client }) => {
    const activation = await timeHostnamedActivation(bus);
    const hostnamedBefore = await nameOwner(bus, HOSTNAME1.service);
    const cases = hostnameCases(bus, client, await currentHostnameSection(client));
    const notesAfter = async (): Promise<string[]> => [
      await hostnamedContinuity(bus, hostnamedBefore),
      await coreSideDurations(client),
    ];
    return { cases, notes: [activation], notesAfter };
  });
}

/**
 * The first call after sandbox up starts hostnamed through D-Bus activation; timed once here, so
 * the report shows what a plan pays when hostnamed has exited after its 30 s idle timeout.
 */
async function timeHostnamedActivation(bus: MessageBus): Promise<string> {
  const [running] = await callMethod(bus, {
    ...BUS_DAEMON,
    member: 'NameHasOwner',
    signature: 's',
    body: [HOSTNAME1.service],
  });
  if (running === true) return 'hostnamed was already running after sandbox up: its activation was not timed';
  const t0 = process.hrtime.bigint();
  await getAllProperties(bus, HOSTNAME1.service, HOSTNAME1.path, HOSTNAME1.iface);
  const cold = Number(process.hrtime.bigint() - t0);
  return `first hostnamed GetAll after sandbox up (D-Bus activation of hostnamed in its namespaces): ${(cold / 1e6).toFixed(1)} ms`;
}

/** Whether hostnamed kept the connection it had before the measurement, i.e. never idled out and restarted. */
async function hostnamedContinuity(bus: MessageBus, before: string): Promise<string> {
  const after = await nameOwner(bus, HOSTNAME1.service);
  return after === before
    ? `hostnamed kept one connection (${before}) through the run: no idle exit, no re-activation in the samples`
    : `hostnamed was re-activated during the run (${before} → ${after}): some samples include its start-up`;
}

/**
 * The core's own timing of plans and applies, as it records them in the audit log: what is left of
 * the client-side latency is the bus, the caller check, the contract checks and the audit append.
 */
async function coreSideDurations(client: ManagerClient): Promise<string> {
  const medianOf = async (kind: 'plan' | 'apply', key: string): Promise<string> => {
    const values: number[] = [];
    for (const entry of await auditEntries(client, kind)) {
      const ms = entry.durations?.[key];
      if (ms !== undefined) values.push(ms);
    }
    return values.length === 0 ? 'none recorded' : `${median(values).toFixed(2)} ms (n=${values.length})`;
  };
  return (
    `core-side durations from the audit log (warm-up included; before the audit append): ` +
    `plan_ms median ${await medianOf('plan', 'plan_ms')}, apply_ms median ${await medianOf('apply', 'apply_ms')}`
  );
}

/**
 * Every audit entry of one kind, newest first, read in pages: a reply of more than about 210 KB
 * never arrives through dbus-next 0.10.2 (and leaves the core deaf), which one 10,000-entry page of
 * plan entries exceeds.
 */
async function auditEntries(client: ManagerClient, kind: 'plan' | 'apply'): Promise<AuditListEntry[]> {
  const all: AuditListEntry[] = [];
  let beforeSeq: number | undefined;
  for (;;) {
    const { entries } = await client.call('AuditList', {
      kind,
      limit: AUDIT_PAGE,
      ...(beforeSeq === undefined ? {} : { beforeSeq }),
    });
    all.push(...entries);
    const last = entries.at(-1);
    if (entries.length < AUDIT_PAGE || last === undefined) return all;
    beforeSeq = last.seq;
  }
}

/** The unique connection name owning a well-known name: a new one means the service was restarted. */
async function nameOwner(bus: MessageBus, name: string): Promise<string> {
  const [owner] = await callMethod(bus, {
    ...BUS_DAEMON,
    member: 'GetNameOwner',
    signature: 's',
    body: [name],
  });
  if (typeof owner !== 'string') throw new Error(`GetNameOwner(${name}) answered without a name`);
  return owner;
}

/** The hostname section as the core sees it now. */
async function currentHostnameSection(client: ManagerClient): Promise<Record<string, string>> {
  const { plugins } = await client.call('Query', { plugins: ['hostname'] });
  const hostname = plugins.find((p) => p.plugin === 'hostname');
  if (hostname?.available !== true) {
    throw new Error(`hostname plugin unavailable: ${hostname?.reason ?? 'not reported'}`);
  }
  const section: Record<string, string> = {};
  for (const [key, value] of Object.entries(hostname.state as Record<string, unknown>)) {
    if (typeof value === 'string') section[key] = value;
  }
  return section;
}

function hostnameDocument(section: Record<string, string>): string {
  return JSON.stringify({ version: 1, plugins: { hostname: section } });
}

function hostnameCases(bus: MessageBus, client: ManagerClient, initial: Record<string, string>): BenchCase[] {
  // What the host holds now; only apply-one-key changes it, so the other cases read it from here.
  const host = { ...initial };
  const pretty = (): string => host['pretty_hostname'] ?? '';
  const polkit = new PolkitAuthority(bus, 'system-bus-name');
  // dbus-next keeps the unique name from the Hello reply in `name`, but its typings leave it out
  const uniqueName = (bus as unknown as { name: string | null }).name ?? '';
  const self: Caller = {
    sender: uniqueName,
    uid: process.getuid?.() ?? null,
    pid: process.pid,
    interactive: false,
  };

  const planOf = async (
    section: Record<string, string>,
    expectChanges: boolean,
  ): Promise<{ id: string; hash: string }> => {
    const plan = await client.call('Plan', { document: hostnameDocument(section), file: DOCUMENT_FILE });
    if (plan.hasChanges !== expectChanges) {
      throw new Error(
        `expected a plan ${expectChanges ? 'with' : 'without'} changes, got the opposite (plan ${plan.hash})`,
      );
    }
    return plan;
  };

  return [
    {
      name: 'bus-ping',
      run: async () => {
        await callMethod(bus, {
          destination: BUS_NAME,
          path: OBJECT_PATH,
          interface: 'org.freedesktop.DBus.Peer',
          member: 'Ping',
        });
      },
    },
    {
      name: 'hostnamed-getall',
      run: async () => {
        await getAllProperties(bus, HOSTNAME1.service, HOSTNAME1.path, HOSTNAME1.iface);
      },
    },
    {
      // the check the core makes before every Manager1 call, made here for this process's own connection
      name: 'polkit-check',
      run: async () => {
        const decision = await polkit.authorize(self, 'plan');
        if (!decision.allowed) throw new Error(`polkit refused ${decision.actionId}: ${decision.reason}`);
      },
    },
    {
      name: 'plan-nochange',
      run: async () => {
        await planOf(host, false);
      },
    },
    {
      name: 'plan-change',
      run: async () => {
        await planOf({ pretty_hostname: `${pretty()} (planned)` }, true);
      },
    },
    {
      name: 'apply-one-key',
      run: async () => {
        const next = pretty() === PRETTY_VALUES[0] ? PRETTY_VALUES[1] : PRETTY_VALUES[0];
        const { id, hash } = await planOf({ pretty_hostname: next }, true);
        await client.call('Approve', { planId: id, hash });
        const applied = await client.call('Apply', { planId: id, hash });
        if (applied.outcome !== 'applied') {
          throw new Error(`apply of plan ${hash} ended "${applied.outcome}"`);
        }
        host['pretty_hostname'] = next;
      },
    },
  ];
}
