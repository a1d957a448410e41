import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OpError } from '../common/contract/index.js';
import { connectBus, type MessageBus } from '../common/dbus/calls.js';
import type { WitnessStore } from '../common/witness/store.js';
import { hostPaths, type ComponentHealth, type HostContext, type HostPaths } from './component.js';
import { bus, BUS_POLICY_FILE } from './components/bus.js';
import { coreComponent, corePidOf } from './components/core.js';
import { COMPONENTS, hostComponents } from './components/index.js';
import { hostNamespaceCommand } from './components/netns.js';
import { polkitRules } from './components/polkitd.js';

// The development host's supervisor (`op-dbus sandbox`): claims a directory, starts each component
// of components/ in order on a private system-like bus, stops them in reverse by PID, and keeps
// what the components keep (the core's data) across down and up, so that a host that went down and
// came back is the same host to the witness.

/** The environment a client needs to use the host: the three every client reads, and each component's own. */
export interface SandboxEnv {
  readonly [variable: string]: string;
  DBUS_SYSTEM_BUS_ADDRESS: string;
  OP_DBUS_SANDBOX: string;
  OP_DBUS_DATA_DIR: string;
}

/** `op-dbus sandbox status`: each component with its PID and health. */
export interface HostStatus {
  dir: string;
  components: (ComponentHealth & { name: string })[];
}

/** Written first: proves the directory is a development host's. Kept until wipe. */
const MARKER = '.op-dbus-sandbox';
/** Written last by up: the host is up, and this is its environment. */
const ENV_FILE = 'env.json';

/** Starts the host's components (the core too when coreCommand is given) and returns its environment. */
export async function sandboxUp(opts: {
  dir: string;
  coreCommand?: string[];
  projectRoot?: string;
}): Promise<SandboxEnv> {
  const paths = hostPaths(hostDir(opts.dir));
  if (process.getuid?.() !== 0) {
    throw new OpError('InvalidArgument', 'the sandbox needs root: it mounts an overlay and runs polkitd');
  }
  if (opts.coreCommand !== undefined && opts.coreCommand.length === 0) {
    throw new OpError('InvalidArgument', 'coreCommand is empty');
  }
  const projectRoot = opts.projectRoot ?? findProjectRoot();
  const { fresh } = await claimDir(paths);
  try {
    const ctx = openContext(paths);
    try {
      for (const component of hostComponents(opts.coreCommand))
        await component.start({ ...ctx, projectRoot });
    } finally {
      await ctx.close();
    }
    const env = hostEnv(paths);
    writeFileSync(join(paths.dir, ENV_FILE), `${JSON.stringify(env, null, 2)}\n`);
    return env;
  } catch (e) {
    // The caller gets the first error; a failing teardown must not hide why up failed. A host
    // that had data before keeps it: a failed start must never cost the audit log.
    await (fresh ? removeHost(paths) : sandboxDown(paths.dir)).catch(() => undefined);
    throw e;
  }
}

/**
 * Stops every process of the host by PID (core, hostnamed, polkitd, bus) and removes what up
 * writes again; keeps what the components keep (the core's data: its audit log and signing key).
 */
export async function sandboxDown(dir: string): Promise<void> {
  const paths = existingHost(dir);
  if (paths === undefined) return;
  await stopHost(paths);
  for (const component of hostComponents()) {
    for (const file of component.files) rmSync(join(paths.dir, file), { recursive: true, force: true });
  }
  rmSync(join(paths.dir, ENV_FILE), { force: true });
}

/**
 * Stops the host and removes its whole directory. The witness, if given, forgets the host: the user
 * asked for a new host, so its new key and log are not tampering (the one place forgetting is
 * automatic). Without one (a caller whose clients never witness), no record is touched.
 */
export async function sandboxWipe(dir: string, witness?: WitnessStore): Promise<void> {
  const paths = hostPaths(hostDir(dir));
  const host = existingHost(paths.dir);
  if (host !== undefined) await removeHost(host);
  witness?.forget(paths.address);
}

/** The environment of the host running at dir, as up printed it. */
export function sandboxEnv(dir: string): SandboxEnv {
  const paths = hostPaths(resolve(dir));
  const notRunning = new OpError(
    'InvalidArgument',
    `no running sandbox at ${paths.dir}; run \`op-dbus sandbox up\``,
  );
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(join(paths.dir, ENV_FILE), 'utf8'));
  } catch {
    throw notRunning;
  }
  if (!isSandboxEnv(parsed) || bus.processes(paths).length === 0) throw notRunning;
  return parsed;
}

/** Each component's PID and health; also for a host that is down (then nothing is healthy). */
export async function sandboxStatus(dir: string): Promise<HostStatus> {
  const paths = hostPaths(resolve(dir));
  if (!existsSync(join(paths.dir, MARKER))) {
    throw new OpError('InvalidArgument', `no sandbox at ${paths.dir}; run \`op-dbus sandbox up\``);
  }
  const ctx = openContext(paths);
  try {
    const components: HostStatus['components'] = [];
    for (const component of hostComponents()) {
      const health = await component.status(ctx).catch((e: unknown): ComponentHealth => ({
        pid: component.processes(paths)[0] ?? null,
        healthy: false,
        detail: e instanceof Error ? e.message : String(e),
      }));
      components.push({ name: component.name, ...health });
    }
    return { dir: paths.dir, components };
  } finally {
    await ctx.close();
  }
}

/** Shell `export` lines for env, so that `eval "$(op-dbus sandbox up)"` sets them. */
export function exportLines(env: SandboxEnv): string {
  return Object.entries(env)
    .map(([k, v]) => `export ${k}=${shellQuote(v)}\n`)
    .join('');
}

/** The PID of the host's running core, or undefined when none runs. */
export function corePid(dir: string): number | undefined {
  return corePidOf(hostPaths(resolve(dir)));
}

/**
 * Stops the host's core if one runs and starts coreCommand in its place, waiting until the new
 * process owns org.opdbus.Manager1; extraEnv is added to its environment. Returns the new PID.
 */
export async function restartCore(
  dir: string,
  coreCommand: string[],
  extraEnv?: Record<string, string>,
): Promise<number> {
  if (coreCommand.length === 0) throw new OpError('InvalidArgument', 'coreCommand is empty');
  const paths = hostPaths(sandboxEnv(dir).OP_DBUS_SANDBOX);
  const core = coreComponent(coreCommand, COMPONENTS, extraEnv);
  const ctx = openContext(paths);
  try {
    await core.stop(paths);
    await core.start({ ...ctx, projectRoot: findProjectRoot() });
  } finally {
    await ctx.close();
  }
  const pid = corePidOf(paths);
  if (pid === undefined)
    throw new OpError('Internal', `the core at ${paths.dir} exited right after it started`);
  return pid;
}

/**
 * argv to run cmd in the running host's namespaces exactly as its core runs (its network, a sysfs of
 * that network, the cgroup tree), with the host's environment: how a person or a test reads the host
 * with the components' own tools (`lxc-ls -P "$OP_DBUS_LXC_PATH"`, `ip -json addr`, `ovs-ofctl`).
 */
export function sandboxExecCommand(
  dir: string,
  cmd: readonly string[],
): { argv: string[]; env: NodeJS.ProcessEnv } {
  if (cmd.length === 0) throw new OpError('InvalidArgument', 'sandbox exec: no command given after --');
  const env = sandboxEnv(dir);
  return { argv: hostNamespaceCommand(hostPaths(env.OP_DBUS_SANDBOX), cmd), env: { ...process.env, ...env } };
}

/** The directory of JS rules the host's polkitd reads (live). */
export function polkitRulesDir(dir: string): string {
  return polkitRules(resolve(dir));
}

/** The absolute host directory, restricted to characters that need no quoting in XML, sh, mount options or D-Bus addresses. */
function hostDir(dir: string): string {
  const abs = resolve(dir);
  if (!/^\/[A-Za-z0-9._/-]+$/.test(abs)) {
    throw new OpError(
      'InvalidArgument',
      `sandbox directory ${abs} may contain only letters, digits and . _ - /`,
    );
  }
  return abs;
}

/** The host at dir, undefined when there is no directory; refuses a directory that is not a host's. */
function existingHost(dir: string): HostPaths | undefined {
  const paths = hostPaths(hostDir(dir));
  if (!existsSync(paths.dir)) return undefined;
  if (!existsSync(join(paths.dir, MARKER)) && readdirSync(paths.dir).length > 0) {
    throw new OpError('InvalidArgument', `${paths.dir} is not a sandbox directory; not removing it`);
  }
  return paths;
}

/**
 * Makes dir ours: refuses a running host or a foreign non-empty directory. A host that went down
 * (or died) is taken up again with its data; what it left of its runtime files is removed first.
 * fresh says whether this call made the directory a host's.
 */
async function claimDir(paths: HostPaths): Promise<{ fresh: boolean }> {
  const alreadyRunning = new OpError(
    'InvalidArgument',
    `sandbox already running at ${paths.dir}; run \`op-dbus sandbox down\``,
  );
  // polkitd drops to user polkitd, which must reach the bus socket inside dir (mkdir makes the rest 0755).
  for (let d = dirname(paths.dir); ; d = dirname(d)) {
    if (existsSync(d) && (statSync(d).mode & 0o001) === 0) {
      throw new OpError(
        'InvalidArgument',
        `${d} is not searchable by other users, so polkitd cannot reach the sandbox bus`,
      );
    }
    if (d === dirname(d)) break;
  }
  const marker = join(paths.dir, MARKER);
  let fresh = false;
  if (existsSync(marker)) {
    if (hostComponents().some((c) => c.processes(paths).length > 0)) throw alreadyRunning;
    await sandboxDown(paths.dir);
  } else {
    mkdirSync(paths.dir, { recursive: true });
    if (readdirSync(paths.dir).length > 0) {
      throw new OpError('InvalidArgument', `${paths.dir} is not empty and is not a sandbox directory`);
    }
    try {
      writeFileSync(marker, 'op-dbus development host\n', { flag: 'wx' });
    } catch {
      // Another sandboxUp claimed it between our checks.
      throw alreadyRunning;
    }
    fresh = true;
  }
  chmodSync(paths.dir, 0o755);
  return { fresh };
}

/** Stops every component, the last started first, and then any that the bus activated meanwhile. */
async function stopHost(paths: HostPaths): Promise<void> {
  const components = hostComponents();
  const failures: string[] = [];
  const stop = async (name: string, run: () => Promise<void>): Promise<void> => {
    try {
      await run();
    } catch (e) {
      failures.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  for (const c of [...components].reverse()) await stop(c.name, () => c.stop(paths));
  // A call that reached the bus before it went away may have activated a service once more.
  for (const c of components) {
    if (c.processes(paths).length > 0) await stop(c.name, () => c.stop(paths));
  }
  if (failures.length > 0) {
    throw new OpError('Internal', `sandbox at ${paths.dir} did not stop: ${failures.join('; ')}`);
  }
}

/** Stops the host and removes its directory with everything in it. */
async function removeHost(paths: HostPaths): Promise<void> {
  await stopHost(paths);
  rmSync(paths.dir, { recursive: true, force: true });
}

/** The components' context: one bus connection, opened when a component first asks for it. */
function openContext(paths: HostPaths): HostContext & { close(): Promise<void> } {
  let connection: Promise<MessageBus> | undefined;
  return {
    paths,
    bus: () => (connection ??= connectBus(paths.address)),
    async close() {
      const opened = connection;
      connection = undefined;
      (await opened?.catch(() => undefined))?.disconnect();
    },
  };
}

/** The host directory first, then each component's variables in start order. */
function hostEnv(paths: HostPaths): SandboxEnv {
  const env: Record<string, string> = { OP_DBUS_SANDBOX: paths.dir };
  for (const component of hostComponents()) Object.assign(env, component.env(paths));
  if (!isSandboxEnv(env)) throw new OpError('Internal', `the host's components export no bus or data dir`);
  return env;
}

function isSandboxEnv(v: unknown): v is SandboxEnv {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    Object.values(r).every((x) => typeof x === 'string') &&
    ['DBUS_SYSTEM_BUS_ADDRESS', 'OP_DBUS_SANDBOX', 'OP_DBUS_DATA_DIR'].every((k) => k in r)
  );
}

/** The project root: the nearest ancestor of this module holding the bus policy, from source or from dist/. */
function findProjectRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let d = start; ; d = dirname(d)) {
    if (existsSync(join(d, BUS_POLICY_FILE))) return d;
    if (d === dirname(d)) break;
  }
  throw new OpError('Internal', `no ${BUS_POLICY_FILE} in any directory above ${start}; pass projectRoot`);
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
