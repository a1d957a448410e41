import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OpError } from '../../common/contract/index.js';
import type { MessageBus } from '../../common/dbus/calls.js';
import { callBusDaemon, ownerPid } from '../bus-daemon.js';
import { SERVICE_PATH, type HostComponent, type HostPaths } from '../component.js';
import { mountinfoOf, otherPids, stopProcess } from '../processes.js';
import { servicesDir } from './bus.js';

// A systemd daemon D-Bus-activated by the host's bus, as hostnamed.ts does it: an activation file
// in the host's own service directory (so it comes back after its idle exit), its own mount
// namespace with an overlay on /etc (its writes land in the host directory, never in the real
// /etc), and whatever else confines it (`confine`: the words before the daemon's binary).

export interface ActivatedDaemon {
  /** The component's name, and the prefix of its files in the host directory. */
  name: string;
  busName: string;
  candidates: readonly string[];
  /** Commands the daemon is exec'd through inside its namespace, e.g. setpriv dropping a capability. */
  confine: readonly string[];
  /** The variable that names its /etc overlay's upper layer (what tests read back). */
  etcVariable: string;
}

/** The component of such a daemon. */
export function activatedDaemon(d: ActivatedDaemon): HostComponent {
  const wrapper = (p: HostPaths): string => join(p.dir, `${d.name}-run`);
  const log = (p: HostPaths): string => join(p.dir, `${d.name}.log`);
  const activationFile = (p: HostPaths): string => join(servicesDir(p), `${d.busName}.service`);
  const etcWork = (p: HostPaths): string => join(p.dir, `${d.name}-etc-work`);
  const etcUpper = (p: HostPaths): string => join(p.dir, `${d.name}-etc-upper`);

  const pids = (paths: HostPaths): number[] => {
    const upper = new RegExp(`[ ,]upperdir=${escapeRegExp(etcUpper(paths))}(,|\\s|$)`, 'm');
    return otherPids().filter((pid) => upper.test(mountinfoOf(pid)));
  };
  const activatable = async (paths: HostPaths, connection: MessageBus): Promise<boolean> => {
    if (!existsSync(activationFile(paths)) || !existsSync(wrapper(paths))) return false;
    const [names] = await callBusDaemon(connection, 'ListActivatableNames');
    return Array.isArray(names) && names.includes(d.busName);
  };
  const script = (paths: HostPaths, binary: string): string => {
    const overlay = `lowerdir=/etc,upperdir=${etcUpper(paths)},workdir=${etcWork(paths)}`;
    return `#!/bin/sh
exec >>${log(paths)} 2>&1
export PATH=${SERVICE_PATH}
export DBUS_SYSTEM_BUS_ADDRESS=${paths.address}
exec unshare -m --propagation private sh -c 'mount -t overlay overlay -o ${overlay} /etc && exec ${[...d.confine, binary].join(' ')}'
`;
  };

  return {
    name: d.name,
    files: [
      `${d.name}-run`,
      `${d.name}.log`,
      `${d.name}-etc-upper`,
      `${d.name}-etc-work`,
      `services/${d.busName}.service`,
    ],
    keeps: [],
    env: (paths) => ({ [d.etcVariable]: etcUpper(paths) }),

    async start(ctx) {
      const paths = ctx.paths;
      const binary = d.candidates.find((p) => existsSync(p));
      if (binary === undefined)
        throw new OpError('PluginUnavailable', `${d.name} not found (looked at ${d.candidates.join(', ')})`);
      mkdirSync(etcUpper(paths), { recursive: true });
      mkdirSync(etcWork(paths), { recursive: true });
      writeFileSync(wrapper(paths), script(paths, binary), { mode: 0o755 });
      writeFileSync(
        activationFile(paths),
        `[D-BUS Service]\nName=${d.busName}\nExec=${wrapper(paths)}\nUser=root\n`,
      );
      const connection = await ctx.bus();
      await callBusDaemon(connection, 'ReloadConfig');
      if (!(await activatable(paths, connection)))
        throw new OpError(
          'Internal',
          `the host's bus does not list ${d.busName} as activatable after ReloadConfig`,
        );
    },

    processes: (paths) => pids(paths),

    async stop(paths) {
      for (const pid of pids(paths)) await stopProcess(pid, d.name, { group: false });
    },

    async status(ctx) {
      const connection = await ctx.bus();
      const running = pids(ctx.paths);
      const pid = running[0] ?? null;
      if (!(await activatable(ctx.paths, connection)))
        return {
          pid,
          healthy: false,
          detail: `${d.busName} is not activatable from ${activationFile(ctx.paths)}`,
        };
      if (pid === null)
        return {
          pid,
          healthy: true,
          detail: `activatable from ${servicesDir(ctx.paths)}; not running (it exits when idle, the next call starts it)`,
        };
      const owner = await ownerPid(connection, d.busName);
      if (owner !== undefined && !running.includes(owner))
        return {
          pid,
          healthy: false,
          detail: `${d.busName} is owned by PID ${owner}, not ours (${running.join(', ')})`,
        };
      return { pid, healthy: true, detail: `activatable from ${servicesDir(ctx.paths)}; running` };
    },
  };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
