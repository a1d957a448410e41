import { join } from 'node:path';
import type { MessageBus } from '../common/dbus/calls.js';

// The development host is a supervisor (host.ts) and one module per real component
// (components/). Each component has this one shape, so that a new one (ovsdb-server and
// ovs-vswitchd, a wireguard-go node, packagekitd, ...) is one module registered in one list.

/** Where the host lives: its directory and its bus, which every component may rely on. */
export interface HostPaths {
  /** The host directory: absolute, only characters that need no quoting in XML, sh or D-Bus addresses. */
  readonly dir: string;
  /** The bus's socket and its D-Bus address (what DBUS_SYSTEM_BUS_ADDRESS says to clients). */
  readonly socket: string;
  readonly address: string;
}

/** What the supervisor gives a component to check it. */
export interface HostContext {
  readonly paths: HostPaths;
  /** One connection to the host's bus, opened on first use; the supervisor closes it. */
  bus(): Promise<MessageBus>;
}

/** What the supervisor gives a component to start it. */
export interface StartContext extends HostContext {
  /** Where the project's files that a component installs are (bus policy, polkit actions). */
  readonly projectRoot: string;
}

/** One line of `op-dbus sandbox status`. */
export interface ComponentHealth {
  pid: number | null;
  healthy: boolean;
  /** What was checked and found, for a person. */
  detail: string;
}

/** One real component of the host; the supervisor starts them in order and stops them in reverse. */
export interface HostComponent {
  readonly name: string;
  /** What it writes into the host directory (relative paths): removed by down, written again by up. */
  readonly files: readonly string[];
  /** What it keeps across down and up (the host's own state); only `down --wipe` removes it. */
  readonly keeps: readonly string[];
  /** The variables its own tools need to reach it (e.g. OVS_RUNDIR), exported by `sandbox up` and `env`. */
  env(paths: HostPaths): Readonly<Record<string, string>>;
  /**
   * What the core's configuration gets from it, per plugin (`[plugins.<name>]` of the core's config
   * file): e.g. the lxc plugin's storages or the key directories. Written before the core starts.
   */
  coreConfig?(paths: HostPaths): Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Writes its files and starts it; resolves once it serves. */
  start(ctx: StartContext): Promise<void>;
  /** Its live processes, found by PID file or /proc and checked to be this host's, never by name. */
  processes(paths: HostPaths): number[];
  /** Stops its processes by PID; nothing running is not an error. */
  stop(paths: HostPaths): Promise<void>;
  /** Its PID and whether it answers as it should. */
  status(ctx: HostContext): Promise<ComponentHealth>;
}

/** The paths of the host at dir (already checked by the supervisor). */
export function hostPaths(dir: string): HostPaths {
  const socket = join(dir, 'system_bus_socket');
  return { dir, socket, address: `unix:path=${socket}` };
}

/** The PATH the host's services run with when the caller has none. */
export const SERVICE_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

/** The environment for the host's services: only what they need, so nothing of the caller's session leaks in. */
export function serviceEnv(paths: HostPaths): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'] ?? SERVICE_PATH, DBUS_SYSTEM_BUS_ADDRESS: paths.address };
}
