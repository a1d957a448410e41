import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OpError } from '../../common/contract/index.js';
import { serviceEnv, type HostComponent, type HostPaths } from '../component.js';
import {
  cmdlineOf,
  exitOf,
  livePidFromFile,
  logTail,
  sleep,
  spawnDetached,
  stopProcess,
} from '../processes.js';
import { run } from '../run.js';
import { hostNamespaceCommand } from './netns.js';

// Open vSwitch on the userspace datapath: ovsdb-server on a database and run directory inside the
// host directory, ovs-vswitchd inside the host's network namespace (so its bridges' internal ports
// and the veths attached to them are the host's interfaces, not this machine's). Bridges are
// created with datapath_type=netdev: no kernel module. The tools (ovs-vsctl, ovs-ofctl) reach these
// daemons through OVS_RUNDIR, which `sandbox env` exports; the plugins get the sockets through the
// core's config. Nothing here ever touches a host-wide OVS (/var/run/openvswitch).

const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';
const START_TIMEOUT_MS = 15_000;

const root = (p: HostPaths): string => join(p.dir, 'ovs');
/** OVS_RUNDIR of the host: the db socket, each bridge's `<bridge>.mgmt` OpenFlow socket, the control sockets. */
export const ovsRundir = (p: HostPaths): string => join(root(p), 'run');
const logDir = (p: HostPaths): string => join(root(p), 'log');
const dbDir = (p: HostPaths): string => join(root(p), 'db');
const dbFile = (p: HostPaths): string => join(dbDir(p), 'conf.db');
/** The OVSDB JSON-RPC socket (RFC 7047) the net and openflow plugins talk to. */
export const ovsdbSocket = (p: HostPaths): string => join(ovsRundir(p), 'db.sock');
const serverPidFile = (p: HostPaths): string => join(root(p), 'ovsdb-server.pid');
const switchPidFile = (p: HostPaths): string => join(root(p), 'ovs-vswitchd.pid');

function ovsEnv(paths: HostPaths): NodeJS.ProcessEnv {
  return {
    ...serviceEnv(paths),
    OVS_RUNDIR: ovsRundir(paths),
    OVS_LOGDIR: logDir(paths),
    OVS_DBDIR: dbDir(paths),
  };
}

/** A live daemon of this host: its PID file names it, and its command line names this host's socket or database. */
function daemonPid(paths: HostPaths, pidFile: string): number | undefined {
  return livePidFromFile(pidFile, (pid) => cmdlineOf(pid).some((a) => a.includes(root(paths))));
}

export const ovs: HostComponent = {
  name: 'ovs',
  files: ['ovs/run', 'ovs/log', 'ovs/ovsdb-server.pid', 'ovs/ovs-vswitchd.pid'],
  keeps: ['ovs/db'],

  env: (paths) => ({ OVS_RUNDIR: ovsRundir(paths), OVS_LOGDIR: logDir(paths), OVS_DBDIR: dbDir(paths) }),

  coreConfig: (paths) => {
    const table = { db_socket: ovsdbSocket(paths), ovs_rundir: ovsRundir(paths), datapath_type: 'netdev' };
    return { net: table, openflow: table };
  },

  async start(ctx) {
    const paths = ctx.paths;
    for (const d of [ovsRundir(paths), logDir(paths), dbDir(paths)]) mkdirSync(d, { recursive: true });
    const env = ovsEnv(paths);
    if (!existsSync(dbFile(paths))) await run('ovsdb-tool', ['create', dbFile(paths), SCHEMA], { env });

    const serverLog = join(logDir(paths), 'ovsdb-server.log');
    const server = await spawnDetached(
      'ovsdb-server',
      [
        dbFile(paths),
        `--remote=punix:${ovsdbSocket(paths)}`,
        '--remote=db:Open_vSwitch,Open_vSwitch,manager_options',
        `--unixctl=${join(ovsRundir(paths), 'ovsdb-server.ctl')}`,
        `--log-file=${serverLog}`,
      ],
      env,
      join(logDir(paths), 'ovsdb-server.out'),
      'ovsdb-server',
    );
    writeFileSync(serverPidFile(paths), `${server.pid}\n`);
    await waitUntil('ovsdb-server', () => existsSync(ovsdbSocket(paths)), server, serverLog);
    await run('ovs-vsctl', ['--no-wait', 'init'], { env });

    const switchLog = join(logDir(paths), 'ovs-vswitchd.log');
    const [wrapper, ...args] = hostNamespaceCommand(paths, [
      'ovs-vswitchd',
      `unix:${ovsdbSocket(paths)}`,
      `--unixctl=${join(ovsRundir(paths), 'ovs-vswitchd.ctl')}`,
      `--log-file=${switchLog}`,
    ]);
    const vswitchd = await spawnDetached(
      wrapper ?? 'unshare',
      args,
      env,
      join(logDir(paths), 'ovs-vswitchd.out'),
      'ovs-vswitchd',
    );
    writeFileSync(switchPidFile(paths), `${vswitchd.pid}\n`);
    // Without --no-wait, ovs-vsctl waits until ovs-vswitchd has taken this change up (cur_cfg).
    await run('ovs-vsctl', ['--timeout=10', 'set', 'Open_vSwitch', '.', 'external_ids:op-dbus-host=1'], {
      env,
      timeoutMs: START_TIMEOUT_MS,
    }).catch((e: unknown) => {
      throw new OpError(
        'Internal',
        `ovs-vswitchd did not take up the database (${e instanceof Error ? e.message : String(e)}); log:\n${logTail(switchLog)}`,
      );
    });
  },

  processes: (paths) =>
    [daemonPid(paths, switchPidFile(paths)), daemonPid(paths, serverPidFile(paths))].filter(
      (p): p is number => p !== undefined,
    ),

  async stop(paths) {
    const vswitchd = daemonPid(paths, switchPidFile(paths));
    if (vswitchd !== undefined) await stopProcess(vswitchd, 'ovs-vswitchd', { group: false });
    const server = daemonPid(paths, serverPidFile(paths));
    if (server !== undefined) await stopProcess(server, 'ovsdb-server', { group: false });
  },

  async status(ctx) {
    const paths = ctx.paths;
    const server = daemonPid(paths, serverPidFile(paths));
    const vswitchd = daemonPid(paths, switchPidFile(paths));
    if (server === undefined) return { pid: null, healthy: false, detail: 'ovsdb-server is not running' };
    if (vswitchd === undefined) return { pid: server, healthy: false, detail: 'ovs-vswitchd is not running' };
    try {
      const bridges = (await run('ovs-vsctl', ['--timeout=5', 'list-br'], { env: ovsEnv(paths) })).trim();
      return {
        pid: vswitchd,
        healthy: true,
        detail: `ovsdb-server ${server}, ovs-vswitchd ${vswitchd}; bridges: ${bridges === '' ? 'none' : bridges.split('\n').join(', ')}`,
      };
    } catch (e) {
      return { pid: vswitchd, healthy: false, detail: e instanceof Error ? e.message : String(e) };
    }
  },
};

async function waitUntil(
  what: string,
  ready: () => boolean,
  child: ChildProcess,
  logFile: string,
): Promise<void> {
  const until = Date.now() + START_TIMEOUT_MS;
  while (!ready()) {
    const ended = exitOf(child);
    if (ended !== undefined)
      throw new OpError('Internal', `${what} ended (${ended}); log:\n${logTail(logFile)}`);
    if (Date.now() > until) throw new OpError('Internal', `${what} did not start; log:\n${logTail(logFile)}`);
    await sleep(20);
  }
}
