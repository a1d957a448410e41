import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OpError } from '../../common/contract/index.js';
import type { MessageBus } from '../../common/dbus/calls.js';
import { callBusDaemon, ownerPid } from '../bus-daemon.js';
import { SERVICE_PATH, type HostComponent, type HostPaths } from '../component.js';
import { mountinfoOf, otherPids, stopProcess } from '../processes.js';
import { servicesDir } from './bus.js';

// systemd-hostnamed, D-Bus-activated by the host's bus from an activation file in the host's own
// service directory, so it comes back on demand after its ~30 s idle exit. It runs in its own mount
// namespace with an overlay on /etc, so it never writes the real /etc, and in its own UTS namespace,
// so SetStaticHostname's sethostname() never changes the real machine's kernel hostname.

const HOSTNAME1 = 'org.freedesktop.hostname1';
// Debian 12 ships hostnamed under /lib (merged into /usr/lib), Debian 13 only under /usr/lib.
const CANDIDATES = ['/usr/lib/systemd/systemd-hostnamed', '/lib/systemd/systemd-hostnamed'];

const wrapper = (p: HostPaths): string => join(p.dir, 'hostnamed-run');
const log = (p: HostPaths): string => join(p.dir, 'hostnamed.log');
const activationFile = (p: HostPaths): string => join(servicesDir(p), `${HOSTNAME1}.service`);
const etcWork = (p: HostPaths): string => join(p.dir, 'etc-work');

/** Where hostnamed's writes to /etc land (machine-info, hostname): the overlay's upper layer. */
const etcUpper = (p: HostPaths): string => join(p.dir, 'etc-upper');

export const hostnamed: HostComponent = {
  name: 'hostnamed',
  files: ['hostnamed-run', 'hostnamed.log', 'etc-upper', 'etc-work', `services/${HOSTNAME1}.service`],
  keeps: [],

  env: (paths) => ({ OP_DBUS_SANDBOX_HOSTNAMED_ETC: etcUpper(paths) }),

  async start(ctx) {
    const paths = ctx.paths;
    const binary = CANDIDATES.find((p) => existsSync(p));
    if (binary === undefined) {
      throw new OpError(
        'PluginUnavailable',
        `systemd-hostnamed not found (looked at ${CANDIDATES.join(', ')})`,
      );
    }
    mkdirSync(etcUpper(paths), { recursive: true });
    mkdirSync(etcWork(paths), { recursive: true });
    writeFileSync(wrapper(paths), wrapperScript(paths, binary), { mode: 0o755 });
    writeFileSync(
      activationFile(paths),
      `[D-BUS Service]\nName=${HOSTNAME1}\nExec=${wrapper(paths)}\nUser=root\n`,
    );
    // The bus has read its service directory already: have it read the new file now.
    const connection = await ctx.bus();
    await callBusDaemon(connection, 'ReloadConfig');
    if (!(await activatable(ctx.paths, connection))) {
      throw new OpError(
        'Internal',
        `the host's bus does not list ${HOSTNAME1} as activatable after ReloadConfig`,
      );
    }
  },

  processes: (paths) => hostnamedPids(paths),

  async stop(paths) {
    for (const pid of hostnamedPids(paths)) await stopProcess(pid, 'hostnamed', { group: false });
  },

  async status(ctx) {
    const connection = await ctx.bus();
    const pids = hostnamedPids(ctx.paths);
    const pid = pids[0] ?? null;
    if (!(await activatable(ctx.paths, connection))) {
      return {
        pid,
        healthy: false,
        detail: `${HOSTNAME1} is not activatable from ${activationFile(ctx.paths)}`,
      };
    }
    if (pid === null) {
      return {
        pid,
        healthy: true,
        detail: `activatable from ${servicesDir(ctx.paths)}; not running (it exits when idle, the next call starts it)`,
      };
    }
    const owner = await ownerPid(connection, HOSTNAME1);
    if (owner !== undefined && !pids.includes(owner)) {
      return {
        pid,
        healthy: false,
        detail: `${HOSTNAME1} is owned by PID ${owner}, not ours (${pids.join(', ')})`,
      };
    }
    return { pid, healthy: true, detail: `activatable from ${servicesDir(ctx.paths)}; running` };
  },
};

/** Whether the bus would start our hostnamed: it lists the name, and the activation file is ours. */
async function activatable(paths: HostPaths, connection: MessageBus): Promise<boolean> {
  if (!existsSync(activationFile(paths)) || !existsSync(wrapper(paths))) return false;
  const [names] = await callBusDaemon(connection, 'ListActivatableNames');
  return Array.isArray(names) && names.includes(HOSTNAME1);
}

/** The Exec of hostnamed's activation file: an overlay on /etc in its own mount and UTS namespaces. */
function wrapperScript(paths: HostPaths, binary: string): string {
  const overlay = `lowerdir=/etc,upperdir=${etcUpper(paths)},workdir=${etcWork(paths)}`;
  return `#!/bin/sh
exec >>${log(paths)} 2>&1
export PATH=${SERVICE_PATH}
export DBUS_SYSTEM_BUS_ADDRESS=${paths.address}
exec unshare -m -u --propagation private sh -c 'mount -t overlay overlay -o ${overlay} /etc && exec ${binary}'
`;
}

/** hostnamed processes of this host: those whose mount namespace has this host's /etc overlay. */
function hostnamedPids(paths: HostPaths): number[] {
  const upper = new RegExp(`[ ,]upperdir=${escapeRegExp(etcUpper(paths))}(,|\\s|$)`, 'm');
  return otherPids().filter((pid) => upper.test(mountinfoOf(pid)));
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
