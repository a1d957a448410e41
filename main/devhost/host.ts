import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import dbus from 'dbus-next';
import { BUS_NAME, OpError } from '../common/contract/index.js';
import { callMethod, connectBus } from '../common/dbus/calls.js';

/** The environment a client needs to talk to a sandbox instead of the real system bus. */
export interface SandboxEnv {
  DBUS_SYSTEM_BUS_ADDRESS: string;
  OP_DBUS_SANDBOX: string;
  OP_DBUS_DATA_DIR: string;
}

const POLKITD = '/usr/lib/polkit-1/polkitd';
// Debian 12 ships hostnamed under /lib (merged into /usr/lib), Debian 13 only under /usr/lib.
const HOSTNAMED_CANDIDATES = ['/usr/lib/systemd/systemd-hostnamed', '/lib/systemd/systemd-hostnamed'];
const POLICY_FILE = join('build', 'dbus', 'org.opdbus.Manager1.conf');
const POLKIT_POLICY_FILE = join('build', 'polkit', 'org.opdbus.policy');
const SYSTEM_POLKIT_ACTIONS = '/usr/share/polkit-1/actions';
const SYSTEM_POLKIT_RULES = '/etc/polkit-1/rules.d';
const POLKIT_NAME = 'org.freedesktop.PolicyKit1';
const SERVICE_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

const POLKITD_TIMEOUT_MS = 10_000;
const CORE_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;
const POLL_MS = 50;

const execFileAsync = promisify(execFile);

/** Where everything of one sandbox lives inside its directory. */
interface SandboxLayout {
  dir: string;
  /** Written first and exclusively: proves the directory is a sandbox and who owns it. */
  marker: string;
  busConf: string;
  busPid: string;
  socket: string;
  address: string;
  systemD: string;
  servicesDir: string;
  hostnamedRun: string;
  hostnamedLog: string;
  etcUpper: string;
  etcWork: string;
  polkitdLog: string;
  polkitdPid: string;
  /** polkitd sees these (bind-mounted in its own mount namespace) instead of the system's. */
  polkitActions: string;
  polkitRules: string;
  dataDir: string;
  coreLog: string;
  corePid: string;
  envJson: string;
}

function layoutOf(dir: string): SandboxLayout {
  const socket = join(dir, 'system_bus_socket');
  return {
    dir,
    marker: join(dir, '.op-dbus-sandbox'),
    busConf: join(dir, 'bus.conf'),
    busPid: join(dir, 'bus.pid'),
    socket,
    address: `unix:path=${socket}`,
    systemD: join(dir, 'system.d'),
    servicesDir: join(dir, 'services'),
    hostnamedRun: join(dir, 'hostnamed-run'),
    hostnamedLog: join(dir, 'hostnamed.log'),
    etcUpper: join(dir, 'etc-upper'),
    etcWork: join(dir, 'etc-work'),
    polkitdLog: join(dir, 'polkitd.log'),
    polkitdPid: join(dir, 'polkitd.pid'),
    polkitActions: join(dir, 'polkit/actions'),
    polkitRules: join(dir, 'polkit/rules.d'),
    dataDir: join(dir, 'data'),
    coreLog: join(dir, 'core.log'),
    corePid: join(dir, 'core.pid'),
    envJson: join(dir, 'env.json'),
  };
}

/** Starts a private system-like bus with polkitd, activatable hostnamed and optionally the core. */
export async function sandboxUp(opts: {
  dir: string;
  coreCommand?: string[];
  projectRoot?: string;
}): Promise<SandboxEnv> {
  const dir = sandboxDir(opts.dir);
  if (process.getuid?.() !== 0) {
    throw new OpError('InvalidArgument', 'the sandbox needs root: it mounts an overlay and runs polkitd');
  }
  if (opts.coreCommand !== undefined && opts.coreCommand.length === 0) {
    throw new OpError('InvalidArgument', 'coreCommand is empty');
  }
  const projectRoot = opts.projectRoot ?? findProjectRoot();
  const policySource = join(projectRoot, POLICY_FILE);
  if (!existsSync(policySource)) {
    throw new OpError('Internal', `bus policy file not found at ${policySource}`, { file: policySource });
  }
  const hostnamed = hostnamedBinary();
  const layout = layoutOf(dir);
  await claimDir(layout);

  try {
    writeSandboxFiles(layout, policySource, hostnamed);
    writePolkitFiles(layout, join(projectRoot, POLKIT_POLICY_FILE));
    await startBus(layout);
    const env: SandboxEnv = {
      DBUS_SYSTEM_BUS_ADDRESS: layout.address,
      OP_DBUS_SANDBOX: dir,
      OP_DBUS_DATA_DIR: layout.dataDir,
    };
    const bus = await connectBus(layout.address);
    try {
      await startPolkitd(layout, bus);
      if (opts.coreCommand !== undefined) await startCore(layout, bus, opts.coreCommand, {}, undefined);
    } finally {
      bus.disconnect();
    }
    writeFileSync(layout.envJson, `${JSON.stringify(env, null, 2)}\n`);
    return env;
  } catch (e) {
    // The caller gets the first error; a failing teardown must not hide why up failed.
    await sandboxDown(dir).catch(() => undefined);
    throw e;
  }
}

/** Stops every process of a sandbox by PID (core, hostnamed, polkitd, bus) and removes its directory. */
export async function sandboxDown(dir: string): Promise<void> {
  const layout = layoutOf(resolve(dir));
  if (!existsSync(layout.dir)) return;
  if (!existsSync(layout.marker) && readdirSync(layout.dir).length > 0) {
    throw new OpError('InvalidArgument', `${layout.dir} is not a sandbox directory; not removing it`);
  }
  const failures: string[] = [];
  const attempt = async (what: string, stop: () => Promise<void>): Promise<void> => {
    try {
      await stop();
    } catch (e) {
      failures.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  await attempt('core', async () => {
    const pid = corePid(layout.dir);
    if (pid !== undefined) await stopProcess(pid, 'core', true);
  });
  await attempt('hostnamed', () => stopHostnamed(layout));
  await attempt('polkitd', async () => {
    const pid = livePidFromFile(layout.polkitdPid, (p) =>
      environOf(p).includes(`DBUS_SYSTEM_BUS_ADDRESS=${layout.address}`),
    );
    if (pid !== undefined) await stopProcess(pid, 'polkitd', false);
  });
  await attempt('dbus-daemon', async () => {
    const pid = livePidFromFile(layout.busPid, (p) => isOurBus(p, layout));
    if (pid !== undefined) await stopProcess(pid, 'dbus-daemon', false);
  });
  // A call that arrived before the bus went away may have activated hostnamed once more.
  await attempt('hostnamed', () => stopHostnamed(layout));
  if (failures.length > 0) {
    throw new OpError('Internal', `sandbox at ${layout.dir} did not stop: ${failures.join('; ')}`);
  }
  rmSync(layout.dir, { recursive: true, force: true });
}

/** The environment of the sandbox running at dir, as written by sandboxUp. */
export function sandboxEnv(dir: string): SandboxEnv {
  const layout = layoutOf(resolve(dir));
  const notRunning = new OpError(
    'InvalidArgument',
    `no running sandbox at ${layout.dir}; run \`op-dbus sandbox up\``,
  );
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(layout.envJson, 'utf8'));
  } catch {
    throw notRunning;
  }
  if (!isSandboxEnv(parsed) || livePidFromFile(layout.busPid, (p) => isOurBus(p, layout)) === undefined) {
    throw notRunning;
  }
  return parsed;
}

/** Shell `export` lines for env, so that `eval "$(op-dbus sandbox up)"` sets them. */
export function exportLines(env: SandboxEnv): string {
  const keys = ['DBUS_SYSTEM_BUS_ADDRESS', 'OP_DBUS_SANDBOX', 'OP_DBUS_DATA_DIR'] as const;
  return keys.map((k) => `export ${k}=${shellQuote(env[k])}\n`).join('');
}

/** The PID of the sandbox's running core, or undefined when none runs. */
export function corePid(dir: string): number | undefined {
  const layout = layoutOf(resolve(dir));
  return livePidFromFile(layout.corePid, (p) => environOf(p).includes(`OP_DBUS_DATA_DIR=${layout.dataDir}`));
}

/**
 * Stops the sandbox's core if one runs and starts coreCommand in its place, waiting until the new
 * process owns org.opdbus.Manager1; extraEnv is added to its environment. Returns the new PID.
 */
export async function restartCore(
  dir: string,
  coreCommand: string[],
  extraEnv?: Record<string, string>,
): Promise<number> {
  if (coreCommand.length === 0) throw new OpError('InvalidArgument', 'coreCommand is empty');
  const env = sandboxEnv(dir);
  const layout = layoutOf(env.OP_DBUS_SANDBOX);
  const bus = await connectBus(layout.address);
  try {
    // The old owner's connection may linger for a moment after its process dies: wait for a new one.
    const previousOwner = await nameOwner(bus, BUS_NAME);
    const old = corePid(layout.dir);
    if (old !== undefined) await stopProcess(old, 'core', true);
    return await startCore(layout, bus, coreCommand, extraEnv ?? {}, previousOwner);
  } finally {
    bus.disconnect();
  }
}

/** The absolute sandbox directory, restricted to characters that need no quoting in XML, sh, mount options or D-Bus addresses. */
function sandboxDir(dir: string): string {
  const abs = resolve(dir);
  if (!/^\/[A-Za-z0-9._/-]+$/.test(abs)) {
    throw new OpError(
      'InvalidArgument',
      `sandbox directory ${abs} may contain only letters, digits and . _ - /`,
    );
  }
  return abs;
}

/** Makes dir ours: refuses a running sandbox or a foreign non-empty directory, clears a stale sandbox. */
async function claimDir(layout: SandboxLayout): Promise<void> {
  const alreadyRunning = new OpError(
    'InvalidArgument',
    `sandbox already running at ${layout.dir}; run \`op-dbus sandbox down\``,
  );
  if (existsSync(layout.marker)) {
    if (sandboxProcesses(layout).length > 0) throw alreadyRunning;
    await sandboxDown(layout.dir);
  }
  mkdirSync(layout.dir, { recursive: true });
  if (readdirSync(layout.dir).length > 0) {
    throw new OpError('InvalidArgument', `${layout.dir} is not empty and is not a sandbox directory`);
  }
  // polkitd drops to user polkitd, which must reach the bus socket inside dir.
  chmodSync(layout.dir, 0o755);
  for (let d = dirname(layout.dir); ; d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) {
      throw new OpError(
        'InvalidArgument',
        `${d} is not searchable by other users, so polkitd cannot reach the sandbox bus`,
      );
    }
    if (d === dirname(d)) break;
  }
  try {
    writeFileSync(layout.marker, `${process.pid}\n`, { flag: 'wx' });
  } catch {
    // Another sandboxUp claimed it between our checks.
    throw alreadyRunning;
  }
}

function writeSandboxFiles(layout: SandboxLayout, policySource: string, hostnamed: string): void {
  for (const d of [layout.systemD, layout.servicesDir, layout.etcUpper, layout.etcWork, layout.dataDir]) {
    mkdirSync(d, { recursive: true });
  }
  writeFileSync(layout.busConf, busConfig(layout));
  copyFileSync(policySource, join(layout.systemD, 'org.opdbus.Manager1.conf'));
  writeFileSync(layout.hostnamedRun, hostnamedWrapper(layout, hostnamed), { mode: 0o755 });
  chmodSync(layout.hostnamedRun, 0o755);
  writeFileSync(
    join(layout.servicesDir, 'org.freedesktop.hostname1.service'),
    `[D-BUS Service]\nName=org.freedesktop.hostname1\nExec=${layout.hostnamedRun}\nUser=root\n`,
  );
}

/**
 * polkitd's own view of actions and rules: the system's actions plus ours, and a rules directory
 * that only this sandbox's tests write to (polkitd reloads it live). The real ones stay untouched.
 */
function writePolkitFiles(layout: SandboxLayout, ourPolicy: string): void {
  for (const d of [layout.polkitActions, layout.polkitRules]) {
    mkdirSync(d, { recursive: true });
    chmodSync(d, 0o755);
  }
  chmodSync(dirname(layout.polkitActions), 0o755);
  for (const f of readdirSync(SYSTEM_POLKIT_ACTIONS)) {
    if (f.endsWith('.policy')) copyFileSync(join(SYSTEM_POLKIT_ACTIONS, f), join(layout.polkitActions, f));
  }
  copyFileSync(ourPolicy, join(layout.polkitActions, 'org.opdbus.policy'));
}

/** The directory of JS rules polkitd reads in this sandbox. */
export function polkitRulesDir(dir: string): string {
  return layoutOf(resolve(dir)).polkitRules;
}

/** A bus that behaves like the system bus (type system, policies enforced) but listens inside the sandbox. */
function busConfig(layout: SandboxLayout): string {
  const d = layout.dir;
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- Generated by op-dbus sandbox. No <user>, <fork> or <servicehelper>: the sandbox forks it,
     and activated services are started directly by this bus. -->
<busconfig>
  <type>system</type>
  <listen>unix:path=${layout.socket}</listen>
  <pidfile>${layout.busPid}</pidfile>
  <auth>EXTERNAL</auth>
  <!-- the sandbox's own activation files come first, so they win over the distribution's -->
  <servicedir>${layout.servicesDir}</servicedir>
  <servicedir>/usr/share/dbus-1/system-services</servicedir>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <!-- the sandbox's own policy files (who may own org.opdbus.Manager1), then the system's -->
  <includedir>${d}/system.d</includedir>
  <includedir>/usr/share/dbus-1/system.d</includedir>
  <includedir>/etc/dbus-1/system.d</includedir>
</busconfig>
`;
}

/**
 * The Exec of hostnamed's activation file. Its own mount namespace gets an overlay on /etc so it
 * never writes the real /etc; its own UTS namespace (-u) means SetStaticHostname's sethostname()
 * can never change the real machine's kernel hostname.
 */
function hostnamedWrapper(layout: SandboxLayout, hostnamed: string): string {
  const overlay = `lowerdir=/etc,upperdir=${layout.etcUpper},workdir=${layout.etcWork}`;
  return `#!/bin/sh
exec >>${layout.hostnamedLog} 2>&1
export PATH=${SERVICE_PATH}
export DBUS_SYSTEM_BUS_ADDRESS=${layout.address}
exec unshare -m -u --propagation private sh -c 'mount -t overlay overlay -o ${overlay} /etc && exec ${hostnamed}'
`;
}

async function startBus(layout: SandboxLayout): Promise<void> {
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(
      'dbus-daemon',
      [`--config-file=${layout.busConf}`, '--fork', '--print-pid=1', '--print-address=1'],
      { env: serviceEnv(layout), timeout: 10_000 },
    ));
  } catch (e) {
    const stderr = typeof e === 'object' && e !== null && 'stderr' in e ? String(e.stderr).trim() : '';
    throw new OpError(
      'Internal',
      `dbus-daemon did not start: ${stderr || (e instanceof Error ? e.message : String(e))}`,
    );
  }
  const lines = stdout.split('\n').filter((l) => l !== '');
  if (!lines.some((l) => l.startsWith(`${layout.address},`) || l === layout.address)) {
    throw new OpError('Internal', `dbus-daemon printed an unexpected address: ${stdout.trim()}`);
  }
}

async function startPolkitd(layout: SandboxLayout, bus: dbus.MessageBus): Promise<void> {
  // unshare without --fork execs: the PID we record is polkitd's own
  const script = `mount --bind ${layout.polkitActions} ${SYSTEM_POLKIT_ACTIONS} && mount --bind ${layout.polkitRules} ${SYSTEM_POLKIT_RULES} && exec ${POLKITD} --no-debug`;
  const child = await spawnDetached(
    'unshare',
    ['-m', '--propagation', 'private', 'sh', '-c', script],
    serviceEnv(layout),
    layout.polkitdLog,
    'polkitd',
  );
  writeFileSync(layout.polkitdPid, `${child.pid}\n`);
  await waitForOwner(
    bus,
    POLKIT_NAME,
    child,
    POLKITD_TIMEOUT_MS,
    undefined,
    () => logTail(layout.polkitdLog),
    'polkitd',
  );
}

async function startCore(
  layout: SandboxLayout,
  bus: dbus.MessageBus,
  coreCommand: string[],
  extraEnv: Record<string, string>,
  previousOwner: string | undefined,
): Promise<number> {
  const [command, ...args] = coreCommand;
  if (command === undefined) throw new OpError('InvalidArgument', 'coreCommand is empty');
  // The sandbox's own variables come last: corePid() recognises the core by OP_DBUS_DATA_DIR.
  const env = {
    ...process.env,
    ...extraEnv,
    DBUS_SYSTEM_BUS_ADDRESS: layout.address,
    OP_DBUS_DATA_DIR: layout.dataDir,
  };
  const child = await spawnDetached(command, args, env, layout.coreLog, 'core');
  const pid = child.pid;
  if (pid === undefined) throw new OpError('Internal', 'core started without a PID');
  writeFileSync(layout.corePid, `${pid}\n`);
  try {
    await waitForOwner(
      bus,
      BUS_NAME,
      child,
      CORE_TIMEOUT_MS,
      previousOwner,
      () => logTail(layout.coreLog),
      'core',
    );
  } catch (e) {
    await stopProcess(pid, 'core', true).catch(() => undefined);
    throw e;
  }
  return pid;
}

/** Starts a process in its own session with stdout and stderr appended to logPath; resolves once it runs. */
async function spawnDetached(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  logPath: string,
  what: string,
): Promise<ChildProcess> {
  const log = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, { detached: true, stdio: ['ignore', log, log], env });
  } finally {
    closeSync(log);
  }
  try {
    await new Promise<void>((resolveSpawn, rejectSpawn) => {
      child.once('spawn', resolveSpawn);
      child.once('error', rejectSpawn);
    });
  } catch (e) {
    throw new OpError(
      'Internal',
      `cannot start ${what} (${command}): ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  child.unref();
  return child;
}

/** Waits until name has an owner other than previousOwner; fails early when child exits. */
async function waitForOwner(
  bus: dbus.MessageBus,
  name: string,
  child: ChildProcess,
  timeoutMs: number,
  previousOwner: string | undefined,
  tail: () => string,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const how = child.exitCode !== null ? `exit code ${child.exitCode}` : `signal ${child.signalCode}`;
      throw new OpError(
        'Internal',
        `${what} exited (${how}) before owning ${name}; its log ends:\n${tail()}`,
      );
    }
    const owner = await nameOwner(bus, name);
    if (owner !== undefined && owner !== previousOwner) return;
    if (Date.now() > deadline) {
      throw new OpError(
        'Internal',
        `${what} did not own ${name} within ${timeoutMs / 1000} s; its log ends:\n${tail()}`,
      );
    }
    await sleep(POLL_MS);
  }
}

/** The unique name owning name, or undefined when it has none. */
async function nameOwner(bus: dbus.MessageBus, name: string): Promise<string | undefined> {
  const [has] = await callBusDaemon(bus, 'NameHasOwner', 's', [name]);
  if (has !== true) return undefined;
  try {
    const [owner] = await callBusDaemon(bus, 'GetNameOwner', 's', [name]);
    return typeof owner === 'string' ? owner : undefined;
  } catch {
    // Released between the two calls.
    return undefined;
  }
}

/** A call to the bus daemon itself (names, owners), with a short timeout. */
function callBusDaemon(
  bus: dbus.MessageBus,
  member: string,
  signature: string,
  body: unknown[],
): Promise<unknown[]> {
  return callMethod(bus, {
    destination: 'org.freedesktop.DBus',
    path: '/org/freedesktop/DBus',
    interface: 'org.freedesktop.DBus',
    member,
    signature,
    body,
    timeoutMs: 5_000,
  });
}

async function stopHostnamed(layout: SandboxLayout): Promise<void> {
  for (const pid of hostnamedPids(layout)) await stopProcess(pid, 'hostnamed', false);
}

/** hostnamed processes of this sandbox: those whose mount namespace has this sandbox's /etc overlay. */
function hostnamedPids(layout: SandboxLayout): number[] {
  const upper = new RegExp(`[ ,]upperdir=${escapeRegExp(layout.etcUpper)}(,|\\s|$)`, 'm');
  return allPids().filter((pid) => {
    if (pid === process.pid) return false;
    try {
      return upper.test(readFileSync(`/proc/${pid}/mountinfo`, 'utf8'));
    } catch {
      return false;
    }
  });
}

/** Every live process the sandbox started, for telling a running sandbox from a stale directory. */
function sandboxProcesses(layout: SandboxLayout): number[] {
  const pids = [
    livePidFromFile(layout.busPid, (p) => isOurBus(p, layout)),
    livePidFromFile(layout.polkitdPid, (p) =>
      environOf(p).includes(`DBUS_SYSTEM_BUS_ADDRESS=${layout.address}`),
    ),
    corePid(layout.dir),
  ].filter((p): p is number => p !== undefined);
  return [...pids, ...hostnamedPids(layout)];
}

function isOurBus(pid: number, layout: SandboxLayout): boolean {
  return cmdlineOf(pid).includes(`--config-file=${layout.busConf}`);
}

/** The PID in pidFile if that process is alive and is the one we started (a PID may have been reused). */
function livePidFromFile(pidFile: string, isOurs: (pid: number) => boolean): number | undefined {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return isAlive(pid) && isOurs(pid) ? pid : undefined;
}

/**
 * SIGTERM, then SIGKILL after a grace period, waiting until pid (and with group, its whole process
 * group) is gone. A zombie counts as gone: it holds nothing and its parent may not be ours to reap it.
 */
async function stopProcess(pid: number, what: string, group: boolean): Promise<void> {
  const gone = (): boolean => !isAlive(pid) && (!group || groupMembers(pid).length === 0);
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    try {
      process.kill(group ? -pid : pid, signal);
    } catch {
      // Already gone (ESRCH).
    }
    const deadline = Date.now() + STOP_GRACE_MS;
    while (Date.now() < deadline) {
      if (gone()) return;
      await sleep(POLL_MS);
    }
  }
  if (!gone()) throw new OpError('Internal', `${what} (PID ${pid}) did not exit after SIGKILL`);
}

function isAlive(pid: number): boolean {
  const stat = statOf(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

function groupMembers(pgid: number): number[] {
  return allPids().filter((pid) => {
    const stat = statOf(pid);
    return stat !== undefined && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X';
  });
}

/** State and process group from /proc/PID/stat; the command name may hold spaces and parentheses. */
function statOf(pid: number): { state: string; pgrp: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const pgrp = Number.parseInt(fields[2] ?? '', 10);
  return state === undefined ? undefined : { state, pgrp };
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => Number.parseInt(name, 10));
}

function cmdlineOf(pid: number): string[] {
  return procStrings(`/proc/${pid}/cmdline`);
}

function environOf(pid: number): string[] {
  return procStrings(`/proc/${pid}/environ`);
}

function procStrings(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\0');
  } catch {
    return [];
  }
}

/** The environment for the bus and polkitd: only what they need, so nothing of the caller's session leaks in. */
function serviceEnv(layout: SandboxLayout): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'] ?? SERVICE_PATH, DBUS_SYSTEM_BUS_ADDRESS: layout.address };
}

function hostnamedBinary(): string {
  const found = HOSTNAMED_CANDIDATES.find((p) => existsSync(p));
  if (found === undefined) {
    throw new OpError(
      'PluginUnavailable',
      `systemd-hostnamed not found (looked at ${HOSTNAMED_CANDIDATES.join(', ')})`,
    );
  }
  return found;
}

/** The project root: the nearest ancestor of this module holding the bus policy, from source or from dist/. */
function findProjectRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let d = start; ; d = dirname(d)) {
    if (existsSync(join(d, POLICY_FILE))) return d;
    if (d === dirname(d)) break;
  }
  throw new OpError('Internal', `no ${POLICY_FILE} in any directory above ${start}; pass projectRoot`);
}

function logTail(path: string, lines = 20): string {
  try {
    const text = readFileSync(path, 'utf8').trimEnd();
    return text === '' ? '(empty)' : text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function isSandboxEnv(v: unknown): v is SandboxEnv {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r['DBUS_SYSTEM_BUS_ADDRESS'] === 'string' &&
    typeof r['OP_DBUS_SANDBOX'] === 'string' &&
    typeof r['OP_DBUS_DATA_DIR'] === 'string'
  );
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
