import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ManagerClient } from '../../main/client/dbus/manager-client.js';
import { callMethod, type MessageBus } from '../../main/common/dbus/calls.js';
import type { SandboxEnv } from '../../main/devhost/host.js';
import type { BenchCase, BenchGroup, StartedGroup } from '../harness.js';
import { median } from '../statistics.js';
import { withBenchSandbox } from './bench-sandbox.js';

// Plans of the systemd plugin (against the development host's systemd1 stand-in, not systemd) at
// 10/50/200 units and of the packagekit plugin (a real packagekitd) at 10/100/500 packages, and an
// install through the plugin against `pkcon install` of the same package in the same run.

const UNIT_COUNTS = [10, 50, 200];
const PACKAGE_COUNTS = [10, 100, 500];
const PACKAGE = 'opdbus-extra';
const run = promisify(execFile);

export const unitsGroup: BenchGroup = {
  name: 'units',
  description:
    'Plan latency of the systemd plugin (systemd1 stand-in) at 10/50/200 units and the packagekit plugin ' +
    '(real packagekitd) at 10/100/500 packages; an install+removal cycle through the plugin against the ' +
    'same cycle with pkcon (install-only medians in the notes).',
  baseline: 'pkcon-install-remove',
  start: startUnitsGroup,
};

function startUnitsGroup(): Promise<StartedGroup> {
  return withBenchSandbox('opdbus-units-bench', async ({ env, bus, client }) => {
    const units = await writeUnits(env, bus, Math.max(...UNIT_COUNTS));
    const packages = await installedPackages(env, Math.max(...PACKAGE_COUNTS));
    const timings = { plugin: [] as number[], pkcon: [] as number[] };
    const cases = [
      ...UNIT_COUNTS.map((n) => planCase(client, `plan-units@${n}`, unitsDocument(units.slice(0, n)))),
      ...PACKAGE_COUNTS.map((n) =>
        planCase(client, `plan-packages@${n}`, packagesDocument(packages.slice(0, n))),
      ),
      pluginCycle(client, timings.plugin),
      pkconCycle(env, timings.pkcon),
    ];
    return {
      cases,
      notes: [
        `${units.length} unit files written to the stand-in's unit directory; ${packages.length} installed packages named`,
      ],
      notesAfter: () =>
        Promise.resolve([
          `install only (the first half of each cycle): plugin (plan, approve, apply, verify) median ${median(timings.plugin).toFixed(1)} ms, ` +
            `pkcon -y install median ${median(timings.pkcon).toFixed(1)} ms (n=${timings.plugin.length}/${timings.pkcon.length}, warm-up included)`,
        ]),
      facts: () => ({
        install_plugin_median_ms: median(timings.plugin),
        install_pkcon_median_ms: median(timings.pkcon),
      }),
    };
  });
}

/** Unit files with an [Install] section in the host's unit directory, then Reload (as a package would leave them). */
async function writeUnits(env: SandboxEnv, bus: MessageBus, n: number): Promise<string[]> {
  const dir = env['OP_DBUS_SYSTEMD_UNIT_DIR'];
  if (dir === undefined) throw new Error('the sandbox exports no OP_DBUS_SYSTEMD_UNIT_DIR');
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `opdbus-bench-${String(i).padStart(3, '0')}.service`;
    writeFileSync(
      join(dir, name),
      `[Unit]\nDescription=bench unit ${i}\n\n[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n`,
    );
    names.push(name);
  }
  await callMethod(bus, {
    destination: 'org.freedesktop.systemd1',
    path: '/org/freedesktop/systemd1',
    interface: 'org.freedesktop.systemd1.Manager',
    member: 'Reload',
  });
  return names;
}

/** The names of n installed packages of the host's package root, as dpkg-query lists them. */
async function installedPackages(env: SandboxEnv, n: number): Promise<{ name: string; version: string }[]> {
  const admindir = join(env['OP_DBUS_PKG_ROOT'] ?? '', 'var', 'lib', 'dpkg');
  const { stdout } = await run('dpkg-query', [
    '--admindir',
    admindir,
    '-W',
    '-f',
    '${Package} ${Version} ${db:Status-Status}\\n',
  ]);
  const out = stdout
    .split('\n')
    .map((l) => l.split(' '))
    .filter((p) => p[2] === 'installed' && !(p[0] ?? '').includes(':'))
    .map(([name, version]) => ({ name: name ?? '', version: version ?? '' }));
  if (out.length < n) throw new Error(`only ${out.length} packages installed in ${admindir}, need ${n}`);
  return out.slice(0, n);
}

function unitsDocument(names: string[]): string {
  const units = Object.fromEntries(names.map((u) => [u, { active_state: 'inactive', enabled: false }]));
  return JSON.stringify({ version: 1, plugins: { systemd: { units } } });
}

function packagesDocument(pkgs: { name: string; version: string }[]): string {
  const packages = Object.fromEntries(pkgs.map((p) => [p.name, { ensure: 'installed', version: p.version }]));
  return JSON.stringify({ version: 1, plugins: { packagekit: { packages } } });
}

function planCase(client: ManagerClient, name: string, document: string): BenchCase {
  return {
    name,
    run: async () => {
      const plan = await client.call('Plan', { document });
      if (plan.hasChanges) throw new Error(`${name}: expected a plan without changes (plan ${plan.hash})`);
    },
  };
}

async function applyDocument(client: ManagerClient, ensure: 'installed' | 'removed'): Promise<void> {
  const document = JSON.stringify({
    version: 1,
    plugins: { packagekit: { packages: { [PACKAGE]: { ensure } } } },
  });
  const plan = await client.call('Plan', { document });
  await client.call('Approve', { planId: plan.id, hash: plan.hash });
  const applied = await client.call('Apply', {
    planId: plan.id,
    hash: plan.hash,
    confirmIrreversible: plan.irreversible,
  });
  if (applied.outcome !== 'applied') throw new Error(`${ensure} of ${PACKAGE} ended "${applied.outcome}"`);
}

function pluginCycle(client: ManagerClient, installs: number[]): BenchCase {
  return {
    name: 'plugin-install-remove',
    run: async () => {
      const t0 = performance.now();
      await applyDocument(client, 'installed');
      installs.push(performance.now() - t0);
      await applyDocument(client, 'removed');
    },
  };
}

function pkconCycle(env: SandboxEnv, installs: number[]): BenchCase {
  const pkcon = (...args: string[]): Promise<unknown> =>
    run('pkcon', ['-y', '-p', ...args], { env: { ...process.env, ...env }, timeout: 120_000 });
  return {
    name: 'pkcon-install-remove',
    run: async () => {
      const t0 = performance.now();
      await pkcon('install', PACKAGE);
      installs.push(performance.now() - t0);
      await pkcon('remove', PACKAGE);
      const admindir = join(env['OP_DBUS_PKG_ROOT'] ?? '', 'var', 'lib', 'dpkg');
      const { stdout } = await run('dpkg-query', [
        '--admindir',
        admindir,
        '-W',
        '-f',
        '${db:Status-Status}',
        PACKAGE,
      ]).catch(() => ({ stdout: '' }));
      if (stdout === 'installed') throw new Error(`pkcon remove left ${PACKAGE} installed`);
    },
  };
}
