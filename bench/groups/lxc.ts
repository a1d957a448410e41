import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { ManagerClient } from '../../main/client/dbus/manager-client.js';
import { hostPaths } from '../../main/devhost/component.js';
import { corePid, sandboxUp, sandboxWipe } from '../../main/devhost/host.js';
import { hostNamespaceCommand } from '../../main/devhost/components/netns.js';
import { diffSection, settingsOf, type LxcSection } from '../../plugins/lxc/index.js';
import type { BenchCase, BenchGroup, StartedGroup } from '../harness.js';
import { median } from '../statistics.js';

// The lxc plugin at 10, 100 and 1,000 container definitions (a few running, the rest stopped), one
// development host per size: the core's plan (query + diff, through D-Bus, as a client waits for
// it) against the floor measured side by side in the host's network namespace (one `lxc-ls -f`
// plus reading every config file, by a process that stays up so only the work is timed), the
// plugin's diff alone, the core's RSS, and an apply of 10 new containers.

const CLI = resolve(import.meta.dirname, '../../main/op-dbus.js');
const SIZES = [10, 100, 1000] as const;
const TEMPLATE = 'local:vztmpl/busybox-rootfs_amd64.tar.zst';
const APPLY_REPS = 3;

/** The floor, run inside the host's network namespace: the same lxc-ls the plugin runs, then every config read. */
const FLOOR_SCRIPT = `
const { execFile } = require('node:child_process');
const { readFile } = require('node:fs/promises');
const path = process.argv[1];
require('node:readline').createInterface({ input: process.stdin }).on('line', () => {
  execFile('lxc-ls', ['-P', path, '-f', '-F', 'NAME,STATE'], async (e, out) => {
    if (e) { process.stdout.write('error ' + e.message.replace(/\\n/g, ' ') + '\\n'); return; }
    const names = out.trim().split('\\n').slice(1).map((l) => l.trim().split(/\\s+/)[0]);
    await Promise.all(names.map((n) => readFile(path + '/' + n + '/config', 'utf8')));
    process.stdout.write('done ' + names.length + '\\n');
  });
});
`;

interface Host {
  size: number;
  dir: string;
  client: ManagerClient;
  lxcpath: string;
  document: string;
  section: LxcSection;
  current: LxcSection;
  floor: { child: ChildProcess; ask: () => Promise<number> };
  /** The core's RSS after its first plan of the whole population (before the measured ones). */
  firstRss: string;
}

function coreRss(dir: string): string {
  const pid = corePid(dir);
  const kb =
    pid === undefined
      ? undefined
      : /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return kb === undefined ? '?' : `${(Number(kb) / 1024).toFixed(1)} MiB`;
}

export const lxcGroup: BenchGroup = {
  name: 'lxc',
  description:
    'The lxc plugin at 10/100/1,000 container definitions (2-3 running): plan through the core vs the floor ' +
    '(lxc-ls -f + reading the configs, in the host namespace), diff alone, core RSS, apply of 10 new containers.',
  baseline: 'floor-1000',
  start: startLxcGroup,
};

async function startLxcGroup(): Promise<StartedGroup> {
  const parent = mkdtempSync(join(tmpdir(), 'opdbus-lxc-bench-'));
  chmodSync(parent, 0o755);
  const hosts: Host[] = [];
  const dirs: string[] = [];
  const stop = async (): Promise<void> => {
    for (const h of hosts) {
      h.client.close();
      h.floor.child.kill();
    }
    for (const d of dirs) await sandboxWipe(d).catch(() => undefined);
    rmdirSync(parent);
  };
  try {
    const notes: string[] = [];
    for (const size of SIZES) {
      const dir = join(parent, `host-${size}`);
      dirs.push(dir);
      const t0 = performance.now();
      hosts.push(await startHost(dir, size));
      notes.push(
        `${size} definitions: host up and populated in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    }
    notes.push(
      'stopped definitions are clones of one the plugin created (config file; rootfs directory left empty, a plan never reads it); network_type none',
    );
    const cases: BenchCase[] = [];
    for (const h of hosts) cases.push(...hostCases(h));
    const notesAfter = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const h of hosts) {
        out.push(
          `core RSS at ${h.size} definitions: ${h.firstRss} after its first plan, ${coreRss(h.dir)} after the measured plans (the engine keeps up to 16 unapproved plans per caller)`,
        );
      }
      for (const h of hosts) out.push(await applyTen(h));
      return out;
    };
    return { cases, notes, notesAfter, stop };
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}

function container(id: string, state: 'running' | 'stopped'): Record<string, unknown> {
  return {
    id,
    properties: { template: TEMPLATE, hostname: `ct-${id}`, memory: 128, network_type: 'none', state },
  };
}

async function startHost(dir: string, size: number): Promise<Host> {
  const env = await sandboxUp({ dir, coreCommand: [process.execPath, CLI, 'core'] });
  process.env['DBUS_SYSTEM_BUS_ADDRESS'] = env.DBUS_SYSTEM_BUS_ADDRESS;
  const client = await ManagerClient.connect();
  const lxcpath = env['OP_DBUS_LXC_PATH'];
  if (lxcpath === undefined) throw new Error('the development host exports no OP_DBUS_LXC_PATH');
  const running = size >= 100 ? 3 : 2;
  // the plugin creates the running ones and one stopped definition, the model of the clones
  const first = [
    ...Array.from({ length: running }, (_, i) => container(String(1000 + i), 'running')),
    container(String(1000 + running), 'stopped'),
  ];
  await applyDocument(client, { containers: first });
  const model = String(1000 + running);
  const text = readFileSync(join(lxcpath, model, 'config'), 'utf8');
  const all = [...first];
  for (let i = running + 1; i < size; i++) {
    const id = String(1000 + i);
    mkdirSync(join(lxcpath, id, 'rootfs'), { recursive: true, mode: 0o755 });
    const clone = text
      .replaceAll(`${lxcpath}/${model}/`, `${lxcpath}/${id}/`)
      .replaceAll(`/${model}.monitor`, `/${id}.monitor`)
      .replace(/(lxc\.cgroup\.dir\.container = .*\/)\d+$/m, `$1${id}`)
      .replace(`lxc.uts.name = ct-${model}`, `lxc.uts.name = ct-${id}`)
      .replace(`# Container ${model},`, `# Container ${id},`);
    writeFileSync(join(lxcpath, id, 'config'), clone);
    all.push(container(id, 'stopped'));
  }
  const section: LxcSection = { containers: all } as LxcSection;
  const document = JSON.stringify({ version: 1, plugins: { lxc: section } });
  const plan = await client.call('Plan', { document, file: `bench-lxc-${size}.json` });
  if (plan.hasChanges)
    throw new Error(
      `the ${size}-definition document does not match the host: ${JSON.stringify(plan.diffs).slice(0, 400)}`,
    );
  const { plugins } = await client.call('Query', { plugins: ['lxc'] });
  const current = plugins[0]?.available === true ? (plugins[0].state as LxcSection) : undefined;
  if ((current?.containers ?? []).length !== size)
    throw new Error(`query saw ${current?.containers?.length ?? 0} of ${size} containers`);
  return {
    size,
    dir,
    client,
    lxcpath,
    document,
    section,
    current: current as LxcSection,
    floor: floorServer(dir, lxcpath),
    firstRss: coreRss(dir),
  };
}

function floorServer(dir: string, lxcpath: string): Host['floor'] {
  const [cmd, ...args] = hostNamespaceCommand(hostPaths(dir), [
    process.execPath,
    '-e',
    FLOOR_SCRIPT,
    lxcpath,
  ]);
  const child = spawn(cmd ?? 'unshare', args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) =>
    waiting.shift()?.(line),
  );
  const ask = (): Promise<number> =>
    new Promise((res, rej) => {
      waiting.push((line) => {
        const m = /^done (\d+)$/.exec(line);
        if (m === null) rej(new Error(`floor: ${line}`));
        else res(Number(m[1]));
      });
      child.stdin?.write('go\n');
    });
  return { child, ask };
}

function hostCases(h: Host): BenchCase[] {
  const settings = settingsOf({ lxcpath: h.lxcpath, storages: { local: join(h.dir, 'lxc-storage') } });
  return [
    {
      name: `floor-${h.size}`,
      run: async () => {
        const n = await h.floor.ask();
        if (n !== h.size) throw new Error(`floor listed ${n} of ${h.size}`);
      },
    },
    {
      name: `plan-${h.size}`,
      run: async () => {
        const plan = await h.client.call('Plan', { document: h.document, file: `bench-lxc-${h.size}.json` });
        if (plan.hasChanges) throw new Error('the plan has changes');
      },
    },
    {
      name: `diff-${h.size}`,
      run: () => {
        const d = diffSection(h.current, h.section, { after: {} }, settings);
        if (d.resources.length !== h.size) throw new Error('diff lost resources');
        return Promise.resolve();
      },
    },
  ];
}

async function applyDocument(
  client: ManagerClient,
  section: Record<string, unknown>,
  confirm = false,
): Promise<void> {
  const document = JSON.stringify({ version: 1, plugins: { lxc: section } });
  const plan = await client.call('Plan', { document });
  await client.call('Approve', { planId: plan.id, hash: plan.hash });
  await client.call('Apply', {
    planId: plan.id,
    hash: plan.hash,
    ...(confirm ? { confirmIrreversible: plan.irreversible } : {}),
  });
}

/** Plan + approve + apply of 10 new running containers on top of the population (their removal untimed). */
async function applyTen(h: Host): Promise<string> {
  const samples: number[] = [];
  for (let rep = 0; rep < APPLY_REPS; rep++) {
    const ids = Array.from({ length: 10 }, (_, i) => String(5000 + rep * 10 + i));
    const containers = h.section.containers ?? [];
    const t0 = performance.now();
    await applyDocument(h.client, {
      containers: [...containers, ...ids.map((id) => container(id, 'running'))],
    });
    samples.push(performance.now() - t0);
    await applyDocument(
      h.client,
      { containers: ids.map((id) => ({ id, properties: { state: 'absent' } })) },
      true,
    );
  }
  return `apply of 10 new running containers at ${h.size} definitions (plan+approve+apply, n=${APPLY_REPS}): median ${(median(samples) / 1000).toFixed(2)} s, samples ${samples.map((s) => (s / 1000).toFixed(2)).join(', ')} s`;
}
