import { mkdirSync, writeFileSync } from 'node:fs';
import { stringify } from 'smol-toml';
import { join } from 'node:path';
import { BUS_NAME, OpError } from '../../common/contract/index.js';
import { nameOwner, ownedBy, waitForOwner } from '../bus-daemon.js';
import type { HostComponent, HostPaths } from '../component.js';
import { hostNamespaceCommand } from './netns.js';
import { environOf, livePidFromFile, logTail, pidList, spawnDetached, stopProcess } from '../processes.js';

// The core (org.opdbus.Manager1) as a process on the host's bus, started from the command the
// supervisor is given (the development host never imports the service). Its data directory, with
// the audit log and the signing key, is the host's state: kept across down and up.

const START_TIMEOUT_MS = 15_000;

const log = (p: HostPaths): string => join(p.dir, 'core.log');
const pidFile = (p: HostPaths): string => join(p.dir, 'core.pid');
/** The core's configuration file on the host (OP_DBUS_CONFIG): what the components contribute. */
export const coreConfigFile = (p: HostPaths): string => join(p.dir, 'core-config.toml');

/**
 * The trusted signers of plugin bundles on the host at dir (OP_DBUS_TRUSTED_KEYS, `[bundles]
 * trusted_keys`): made by whoever adds the first key (`mkdir -m 755`), kept across down and up.
 */
export const trustedKeysDir = (dir: string): string => join(dir, 'trusted-keys');

/** The core's data directory on the host at dir (OP_DBUS_DATA_DIR). */
export const coreDataDir = (dir: string): string => join(dir, 'data');

/**
 * The core, started from command in the host's network namespace, with the configuration the other
 * components contribute (their coreConfig) and extraEnv added to its environment; without a command
 * (`sandbox up --no-core`, or to stop or check it) start does nothing.
 */
export function coreComponent(
  command?: readonly string[],
  components: readonly HostComponent[] = [],
  extraEnv: Record<string, string> = {},
): HostComponent {
  return {
    name: 'core',
    files: ['core.log', 'core.pid', 'core-config.toml'],
    // data: the audit log and key; data-plugin-state: isolated plugins' own directories; trusted-keys: bundle signers
    keeps: ['data', 'data-plugin-state', 'trusted-keys'],

    env: (paths) => ({
      OP_DBUS_DATA_DIR: coreDataDir(paths.dir),
      OP_DBUS_CONFIG: coreConfigFile(paths),
      OP_DBUS_TRUSTED_KEYS: trustedKeysDir(paths.dir),
    }),

    async start(ctx) {
      if (command === undefined) return;
      const [executable, ...args] = command;
      if (executable === undefined) throw new OpError('InvalidArgument', 'the core command is empty');
      const paths = ctx.paths;
      mkdirSync(coreDataDir(paths.dir), { recursive: true });
      mkdirSync(`${coreDataDir(paths.dir)}-plugin-state`, { recursive: true, mode: 0o755 });
      writeCoreConfig(paths, components);
      const connection = await ctx.bus();
      // A core stopped a moment ago may still own the name: wait for a new owner, not that one.
      const previousOwner = await nameOwner(connection, BUS_NAME);
      // The host's own variables come last: corePid recognises the core by OP_DBUS_DATA_DIR.
      // the same variables a person gets from `sandbox env` (OVS_RUNDIR for LXC's ovs-vsctl, ...)
      const hostVariables = Object.assign({}, ...components.map((c) => c.env(paths))) as Record<
        string,
        string
      >;
      const env = {
        ...process.env,
        ...hostVariables,
        ...extraEnv,
        DBUS_SYSTEM_BUS_ADDRESS: paths.address,
        OP_DBUS_CONFIG: coreConfigFile(paths),
        OP_DBUS_DATA_DIR: coreDataDir(paths.dir),
      };
      const [wrapper, ...wrapped] = hostNamespaceCommand(paths, [executable, ...args]);
      const child = await spawnDetached(wrapper ?? 'unshare', wrapped, env, log(paths), 'core');
      const pid = child.pid;
      if (pid === undefined) throw new OpError('Internal', 'core started without a PID');
      writeFileSync(pidFile(paths), `${pid}\n`);
      try {
        await waitForOwner(connection, BUS_NAME, child, {
          timeoutMs: START_TIMEOUT_MS,
          previousOwner,
          what: 'core',
          logTail: () => logTail(log(paths)),
        });
      } catch (e) {
        await stopProcess(pid, 'core', { group: true }).catch(() => undefined);
        throw e;
      }
    },

    processes: (paths) => pidList(corePidOf(paths)),

    async stop(paths) {
      const pid = corePidOf(paths);
      // The whole group: the core's worker and embedder children go with it.
      if (pid !== undefined) await stopProcess(pid, 'core', { group: true });
    },

    async status(ctx) {
      const pid = corePidOf(ctx.paths);
      return { pid: pid ?? null, ...(await ownedBy(await ctx.bus(), BUS_NAME, pid)) };
    },
  };
}

/** The PID of the host's running core, if the process in core.pid is alive and uses this host's data. */
export function corePidOf(paths: HostPaths): number | undefined {
  return livePidFromFile(pidFile(paths), (p) =>
    environOf(p).includes(`OP_DBUS_DATA_DIR=${coreDataDir(paths.dir)}`),
  );
}

/** Writes the core's configuration: the host's trusted bundle keys and each component's `[plugins.<name>]` tables (later ones win per key). */
function writeCoreConfig(paths: HostPaths, components: readonly HostComponent[]): void {
  const plugins: Record<string, Record<string, unknown>> = {};
  for (const c of components) {
    for (const [name, table] of Object.entries(c.coreConfig?.(paths) ?? {})) {
      plugins[name] = { ...plugins[name], ...table };
    }
  }
  const header = '# Written by `op-dbus sandbox up` from its components; rewritten on every up.\n';
  const bundles = { trusted_keys: trustedKeysDir(paths.dir) };
  writeFileSync(coreConfigFile(paths), header + stringify({ bundles, plugins }) + '\n', { mode: 0o644 });
}
