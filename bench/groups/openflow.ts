import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ManagerClient } from '../../main/client/dbus/manager-client.js';
import { sandboxEnv, sandboxUp, sandboxWipe } from '../../main/devhost/host.js';
import type { PluginContext } from '../../main/sdk/index.js';
import openflow from '../../plugins/openflow/index.js';
import { bridgeTarget, commitBundle, dumpOwned } from '../../plugins/openflow/flows.js';
import type { BenchCase, BenchGroup, StartedGroup } from '../harness.js';

// 10,000 OpenFlow flows on one bridge of the development host's ovs-vswitchd (userspace datapath).
// Group "openflow": the plan (through the core, and the plugin's own diff at 100/1,000/10,000
// flows), our bundle of 10,000 flows (delete our cookie + add, one atomic bundle) against
// `ovs-ofctl --bundle add-flows` of the same flows. Group "openflow-apply": the whole apply
// (checkpoint, journal, bundle, verify, audit) of 10,000 changed flows and of a one-flow change,
// beside the bare bundles of the same flows.

const CLI = resolve(import.meta.dirname, '../../main/op-dbus.js');
const COOKIE = 0x4f50444255530001n;
const N = 10_000;

interface Bench {
  dir: string;
  env: NodeJS.ProcessEnv;
  rundir: string;
  db: string;
  client: ManagerClient;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((ok, fail) => {
    execFile(cmd, args, { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (e, out, err) => {
      if (e === null) ok(out);
      else fail(new Error(`${cmd} ${args.join(' ')}: ${err || e.message}`));
    });
  });
}

async function startBench(bridges: string[]): Promise<Bench> {
  const parent = mkdtempSync(join(tmpdir(), 'opdbus-net-bench-'));
  chmodSync(parent, 0o755);
  const dir = join(parent, 'sb');
  let client: ManagerClient | undefined;
  const stop = async (): Promise<void> => {
    client?.close();
    await sandboxWipe(dir);
    rmSync(parent, { recursive: true, force: true });
  };
  try {
    const up = await sandboxUp({ dir, coreCommand: [process.execPath, CLI, 'core'] });
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = up.DBUS_SYSTEM_BUS_ADDRESS;
    const env = { ...process.env, ...sandboxEnv(dir) } as NodeJS.ProcessEnv;
    const rundir = env['OVS_RUNDIR'] ?? '';
    for (const b of bridges) {
      await run('ovs-vsctl', ['add-br', b, '--', 'set', 'bridge', b, 'datapath_type=netdev'], env);
    }
    client = await ManagerClient.connect();
    return { dir, env, rundir, db: join(rundir, 'db.sock'), client, stop };
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}

/** n structured flows, distinct matches; `variant` changes every action (a full change of the table). */
function flows(n: number, variant = 0): unknown[] {
  return Array.from({ length: n }, (_, i) => ({
    table: 0,
    priority: 100,
    match_fields: { reg1: i },
    actions: [
      { type: 'load_register', register: 2, value: variant },
      { type: 'output', port: 'LOCAL' },
    ],
  }));
}
/** The same flows in ovs-ofctl's syntax, as our bundle writes them. */
const flowTexts = (n: number, variant = 0): string[] =>
  Array.from(
    { length: n },
    (_, i) =>
      `table=0,priority=100,reg1=0x${i.toString(16)},actions=load:0x${variant.toString(16)}->NXM_NX_REG2[],LOCAL`,
  );

const documentOf = (bridge: string, f: unknown[]): string =>
  JSON.stringify({ version: 1, plugins: { openflow: { bridges: [{ name: bridge, flows: f }] } } });

async function applyDocument(client: ManagerClient, doc: string): Promise<void> {
  const plan = await client.call('Plan', { document: doc, file: 'bench-openflow.json' });
  await client.call('Approve', { planId: plan.id, hash: plan.hash });
  const r = await client.call('Apply', { planId: plan.id, hash: plan.hash });
  if (r.outcome !== 'applied') throw new Error(`apply ended "${r.outcome}"`);
}

/** `ovs-ofctl -O OpenFlow14 --bundle add-flows` of these lines (a file written before the clock starts). */
function ofctlBundle(b: Bench, bridge: string, lines: string[], name: string): () => Promise<void> {
  const file = join(b.dir, '..', name);
  writeFileSync(file, lines.join('\n') + '\n');
  return async () => {
    await run(
      'ovs-ofctl',
      ['-O', 'OpenFlow14', '--bundle', 'add-flows', bridgeTarget(b.rundir, bridge), file],
      b.env,
    );
  };
}

function pluginContext(b: Bench, cookie: bigint): PluginContext {
  return {
    plugin: 'openflow',
    config: { db_socket: b.db, ovs_rundir: b.rundir, cookie: `0x${cookie.toString(16)}` },
    bus: {
      call: () => Promise.reject(new Error('no bus in the bench')),
      getAll: () => Promise.reject(new Error('no bus in the bench')),
      reachable: () => Promise.resolve(false),
      listen: () => Promise.reject(new Error('no bus in the bench')),
      open: () => Promise.reject(new Error('no bus in the bench')),
    },
    signal: new AbortController().signal,
    deadline: Date.now() + 3_600_000,
    after: {},
    log: { info: () => undefined, warn: () => undefined },
    progress: () => undefined,
  };
}

export const openflowGroup: BenchGroup = {
  name: 'openflow',
  description:
    '10,000 flows on one OVS bridge (userspace datapath): plan through the core, the plugin diff at 100/1,000/10,000 flows, ' +
    'our one-bundle replace of 10,000 flows against ovs-ofctl --bundle add-flows of the same flows.',
  baseline: 'ofctl-bundle-10000',
  start: async (): Promise<StartedGroup> => {
    const sizes = [100, 1_000, 10_000];
    const b = await startBench(['bench', ...sizes.map((n) => `s${n}`)]);
    try {
      const notes: string[] = [];
      let t = performance.now();
      await applyDocument(b.client, documentOf('bench', flows(N)));
      notes.push(`first apply of 10,000 flows through the core: ${(performance.now() - t).toFixed(0)} ms`);
      t = performance.now();
      const first = await b.client.call('Plan', { document: documentOf('bench', flows(N)) });
      notes.push(
        `first plan after it (canonical forms cached by the apply): ${(performance.now() - t).toFixed(0)} ms, changes: ${String(first.hasChanges)}`,
      );
      // each size on its own bridge under its own cookie, so the diffs see only their own flows
      const ours = flowTexts(N).map((f) => `add cookie=0x${COOKIE.toString(16)},${f}`);
      const sizeCookie = (n: number): bigint => COOKIE + BigInt(n);
      for (const n of sizes) {
        await commitBundle(bridgeTarget(b.rundir, `s${n}`), sizeCookie(n), {
          remove: [],
          add: flowTexts(n),
          replaceAll: true,
        });
        const have = await dumpOwned(bridgeTarget(b.rundir, `s${n}`), sizeCookie(n));
        if (have.length !== n) throw new Error(`bridge s${n} holds ${have.length} of our flows, not ${n}`);
      }
      const diffCase = (n: number): BenchCase => {
        const ctx = pluginContext(b, sizeCookie(n));
        const section = { bridges: [{ name: `s${n}`, flows: flows(n) }] } as Parameters<
          typeof openflow.plugin.diff
        >[1];
        return {
          name: `plugin-diff-${n}`,
          run: async () => {
            const d = await openflow.plugin.diff({}, section, ctx);
            if (d.resources.some((r) => r.action !== 'noop'))
              throw new Error(`diff of ${n} flows is not a no-op`);
          },
        };
      };
      const cases: BenchCase[] = [
        { name: 'ofctl-bundle-10000', run: ofctlBundle(b, 'bench', ours, 'floor.flows') },
        {
          name: 'switch-bundle-10000',
          run: () =>
            commitBundle(bridgeTarget(b.rundir, 'bench'), COOKIE, {
              remove: [],
              add: flowTexts(N),
              replaceAll: true,
            }),
        },
        {
          name: 'core-plan-10000',
          run: async () => {
            const p = await b.client.call('Plan', { document: documentOf('bench', flows(N)) });
            if (p.hasChanges) throw new Error('the 10,000-flow plan is not a no-op');
          },
        },
        ...sizes.map(diffCase),
      ];
      return { cases, notes, stop: b.stop };
    } catch (e) {
      await b.stop().catch(() => undefined);
      throw e;
    }
  },
};

export const openflowApplyGroup: BenchGroup = {
  name: 'openflow-apply',
  description:
    'The whole apply through the core (plan, approve, checkpoint, journal, bundle, verify, audit) of 10,000 changed flows ' +
    'and of a one-flow change to them, beside ovs-ofctl --bundle of the same flows and a bare one-flow bundle.',
  baseline: 'ofctl-bundle-10000',
  start: async (): Promise<StartedGroup> => {
    const b = await startBench(['bench']);
    try {
      let variant = 0;
      let oneFlow = 0;
      const current = (): unknown[] => {
        const f = flows(N, variant);
        f[0] = {
          ...(f[0] as object),
          actions: [
            { type: 'load_register', register: 3, value: oneFlow },
            { type: 'output', port: 'LOCAL' },
          ],
        };
        return f;
      };
      await applyDocument(b.client, documentOf('bench', current()));
      const target = bridgeTarget(b.rundir, 'bench');
      const c = `0x${COOKIE.toString(16)}`;
      const lineOf = (f: string): string => `add cookie=${c},${f}`;
      // the floors re-add what the table holds (same flows, our cookie): they leave it as it is
      const floorFile = join(b.dir, '..', 'floor.flows');
      const oneFile = join(b.dir, '..', 'one.flows');
      const writeFloors = (): void => {
        const texts = flowTexts(N, variant);
        texts[0] = `table=0,priority=100,reg1=0x0,actions=load:0x${oneFlow.toString(16)}->NXM_NX_REG3[],LOCAL`;
        writeFileSync(floorFile, texts.map(lineOf).join('\n') + '\n');
        writeFileSync(oneFile, `${lineOf(texts[1] ?? '')}\n`);
      };
      writeFloors();
      const ofctl = (file: string) => () =>
        run('ovs-ofctl', ['-O', 'OpenFlow14', '--bundle', 'add-flows', target, file], b.env).then(
          () => undefined,
        );
      const cases: BenchCase[] = [
        { name: 'ofctl-bundle-10000', run: ofctl(floorFile) },
        { name: 'ofctl-bundle-1', run: ofctl(oneFile) },
        {
          name: 'switch-one-flow',
          // our bundle for a one-flow change: a strict delete of it and its add (here the same flow)
          run: () =>
            commitBundle(target, COOKIE, {
              remove: [{ text: '', match: 'table=0,priority=100,reg1=0x1' }],
              add: [flowTexts(2, variant)[1] ?? ''],
            }),
        },
        {
          name: 'apply-10000',
          run: async () => {
            variant = 1 - variant;
            await applyDocument(b.client, documentOf('bench', current()));
            writeFloors();
          },
        },
        {
          name: 'apply-one-flow',
          run: async () => {
            oneFlow = 1 - oneFlow;
            await applyDocument(b.client, documentOf('bench', current()));
            writeFloors();
          },
        },
      ];
      return { cases, notes: [], stop: b.stop };
    } catch (e) {
      await b.stop().catch(() => undefined);
      throw e;
    }
  },
};
