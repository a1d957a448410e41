import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ManagerClient } from '../../main/client/dbus/manager-client.js';
import { writeNewKey } from '../../main/client/cli/wireguard-commands.js';
import type { AuditListEntry } from '../../main/common/contract/index.js';
import { sandboxUp, sandboxWipe } from '../../main/devhost/host.js';
import type { BenchCase, BenchGroup, StartedGroup } from '../harness.js';
import { median } from '../statistics.js';

// The wireguard plugin on a 250-node mesh: a plan for one node (in sync, and with every peer
// changing), an apply that replaces all 249 peers (the Apply call alone, its plan made untimed just
// before; and Plan + Approve + Apply as a client waits), against `wg syncconf` of the same
// configuration in the same run (the floor: what wg itself takes), and how a plan grows with 10,
// 100, 1,000 nodes.

const CLI = resolve(import.meta.dirname, '../../main/op-dbus.js');
const W =
  'mount -t tmpfs tmpfs /run && mkdir /run/wireguard && mount --bind "$0" /run/wireguard && exec "$@"';

interface Node {
  name: string;
  public_key: string;
  endpoint: string;
  address: string;
}

function randomPublicKey(): string {
  const x = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x ?? '';
  return Buffer.from(x, 'base64url').toString('base64');
}

/** A mesh of n nodes, this host first; `set` picks which random others (two sets: every peer differs). */
function meshNodes(self: string, n: number): Node[] {
  const out: Node[] = [
    { name: 'self', public_key: self, endpoint: '10.99.0.1:51820', address: '10.8.0.1/16' },
  ];
  for (let i = 1; i < n; i++) {
    const k = i + 1; // 10.8.0.2, ... 10.8.3.233 for 1,000 nodes
    out.push({
      name: `n${i}`,
      public_key: randomPublicKey(),
      endpoint: `10.99.${k >> 8}.${k & 255}:51820`,
      address: `10.8.${k >> 8}.${k & 255}/16`,
    });
  }
  return out;
}

const documentOf = (nodes: Node[]): string =>
  JSON.stringify({ version: 1, plugins: { wireguard: { mesh: { wg0: { nodes } } } } });

/** The same configuration as a wg config file, as the plugin hands it to wg (keys inline: this file is 0600 in the key dir). */
function syncconfText(privateKey: string, nodes: Node[]): string {
  const lines = ['[Interface]', `PrivateKey = ${privateKey}`, 'ListenPort = 51820'];
  for (const n of nodes.slice(1)) {
    lines.push(
      '[Peer]',
      `PublicKey = ${n.public_key}`,
      `PresharedKey = ${Buffer.alloc(32).toString('base64')}`,
      `Endpoint = ${n.endpoint}`,
      `AllowedIPs = ${n.address.split('/')[0] ?? ''}/32`,
      'PersistentKeepalive = 25',
    );
  }
  return lines.join('\n') + '\n';
}

function runIn(netns: string, argv: string[]): Promise<void> {
  return new Promise((resolveRun, rejectRun) => {
    const child = spawn('nsenter', [`--net=/run/netns/${netns}`, ...argv], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', rejectRun);
    child.on('close', (code) =>
      code === 0 ? resolveRun() : rejectRun(new Error(`${argv.join(' ')}: ${err}`)),
    );
  });
}

export const wireguardGroup: BenchGroup = {
  name: 'wireguard',
  description:
    'The wireguard plugin (wireguard-go in a development host): plan for one node of a 250-node mesh, ' +
    'apply replacing its 249 peers (the Apply call alone, and Plan + Approve + Apply) against `wg syncconf` ' +
    'of the same configuration, plan at 10/100/1,000 nodes.',
  baseline: 'wg-syncconf@250',
  start: startWireguardGroup,
};

async function startWireguardGroup(): Promise<StartedGroup> {
  const parent = mkdtempSync('/tmp/opdbus-wg-bench-');
  chmodSync(parent, 0o755);
  const dir = join(parent, 'sandbox');
  let client: ManagerClient | undefined;
  const stop = async (): Promise<void> => {
    client?.close();
    await sandboxWipe(dir);
    rmSync(parent, { recursive: true, force: true });
  };
  try {
    const env = (await sandboxUp({ dir, coreCommand: [process.execPath, CLI, 'core'] })) as Record<
      string,
      string
    >;
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = env['DBUS_SYSTEM_BUS_ADDRESS'];
    const keyDir = env['OP_DBUS_KEY_DIR'] ?? '';
    const netns = env['OP_DBUS_NETNS'] ?? '';
    const rundir = env['OP_DBUS_WG_RUNDIR'] ?? '';
    const keyFile = join(keyDir, 'wg0.key');
    const self = writeNewKey(keyFile);
    const privateKey = readFileSync(keyFile, 'utf8').trim();
    const sets = [meshNodes(self, 250), meshNodes(self, 250)] as const;
    const docs = sets.map(documentOf);
    const confs = sets.map((nodes, i) => {
      const f = join(keyDir, `bench-${i}.conf`);
      writeFileSync(f, syncconfText(privateKey, nodes), { mode: 0o600 });
      return f;
    });
    const scale = new Map([10, 100, 1000].map((n) => [n, documentOf(meshNodes(self, n))]));
    const c = await ManagerClient.connect();
    client = c;
    // the host holds set 0 or set 1: each apply (ours or wg's) switches it to the other
    let holds = 0;
    let prepared: { id: string; hash: string } | undefined;
    const planOf = async (doc: string, changes: boolean): Promise<{ id: string; hash: string }> => {
      const plan = await c.call('Plan', { document: doc, file: 'bench-wireguard.json' });
      if (plan.hasChanges !== changes)
        throw new Error(`expected a plan ${changes ? 'with' : 'without'} changes`);
      return plan;
    };
    const first = await planOf(docs[0] ?? '', true);
    await c.call('Approve', { planId: first.id, hash: first.hash });
    await c.call('Apply', { planId: first.id, hash: first.hash });
    const wrapped = (argv: string[]): Promise<void> =>
      runIn(netns, ['unshare', '-m', '--propagation', 'private', 'sh', '-c', W, rundir, ...argv]);
    const wgSyncconf = (file: string): Promise<void> => wrapped(['wg', 'syncconf', 'wg0', file]);

    const cases: BenchCase[] = [
      {
        name: 'wg-syncconf@250',
        run: async () => {
          const next = 1 - holds;
          await wgSyncconf(confs[next] ?? '');
          holds = next;
        },
      },
      {
        // the baseline's own overhead on this host (nsenter, unshare, sh, two mounts) around `true`:
        // what a real host's `wg syncconf`, run directly, does not pay
        name: 'wrapper-only',
        run: () => wrapped(['true']),
      },
      {
        // what the issue names: the Apply call alone (re-query for staleness, checkpoint, the plugin's
        // part, verify, journal, audit, over D-Bus), its plan made and approved untimed just before
        name: 'apply@250',
        prepare: async () => {
          prepared = await planOf(docs[1 - holds] ?? '', true);
          await c.call('Approve', { planId: prepared.id, hash: prepared.hash });
        },
        run: async () => {
          const plan = prepared;
          prepared = undefined;
          if (plan === undefined) throw new Error('no prepared plan');
          const r = await c.call('Apply', { planId: plan.id, hash: plan.hash });
          if (r.outcome !== 'applied') throw new Error(`apply ended ${r.outcome}`);
          holds = 1 - holds;
        },
      },
      {
        // as a client waits for it: Plan + Approve + Apply
        name: 'plan-approve-apply@250',
        run: async () => {
          const next = 1 - holds;
          const plan = await planOf(docs[next] ?? '', true);
          await c.call('Approve', { planId: plan.id, hash: plan.hash });
          const r = await c.call('Apply', { planId: plan.id, hash: plan.hash });
          if (r.outcome !== 'applied') throw new Error(`apply ended ${r.outcome}`);
          holds = next;
        },
      },
      { name: 'plan-nochange@250', run: async () => void (await planOf(docs[holds] ?? '', false)) },
      { name: 'plan@250', run: async () => void (await planOf(docs[1 - holds] ?? '', true)) },
      ...[...scale].map(([n, doc]) => ({
        name: `plan@${n}`,
        run: async () => void (await planOf(doc, true)),
      })),
    ];
    const notesAfter = async (): Promise<string[]> => {
      const entries: AuditListEntry[] = [];
      let beforeSeq: number | undefined;
      for (;;) {
        const page = await c.call('AuditList', {
          limit: 200,
          ...(beforeSeq !== undefined ? { beforeSeq } : {}),
        });
        entries.push(...page.entries);
        const last = page.entries.at(-1);
        if (page.entries.length < 200 || last === undefined) break;
        beforeSeq = last.seq;
      }
      const of = (kind: string, key: string): string => {
        const v = entries
          .filter((e) => e.kind === kind)
          .flatMap((e) => (e.durations?.[key] !== undefined ? [e.durations[key]] : []));
        return v.length === 0 ? 'none' : `${median(v).toFixed(1)} ms (n=${v.length})`;
      };
      return [
        `core-side durations from the audit log (all plans of every size mixed; warm-up included): plan_ms median ${of('plan', 'plan_ms')}, apply_ms (re-query, checkpoint, UAPI get + set, verify) median ${of('apply', 'apply_ms')}`,
      ];
    };
    return {
      cases,
      notes: [
        "wg-syncconf@250 runs `nsenter --net` + the mount-namespace wrapper wg needs to find the development host's socket directory, then `wg syncconf` of the same 249 peers; apply@250 is the Apply call alone over D-Bus (re-query, checkpoint, the plugin's UAPI get + set, verify, journal, audit), its Plan + Approve made untimed just before it; plan-approve-apply@250 is all three as a client waits for them",
      ],
      notesAfter,
      stop,
    };
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}
