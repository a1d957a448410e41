import { chmodSync, copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ownedBy, waitForOwner } from '../bus-daemon.js';
import { serviceEnv, type HostComponent, type HostPaths } from '../component.js';
import { environOf, livePidFromFile, logTail, pidList, spawnDetached, stopProcess } from '../processes.js';

// polkitd on the host's bus, in its own mount namespace where the system's actions directory and
// rules directory are replaced by the host's: the system's actions plus ours, and a rules directory
// that only this host's tests write to (polkitd reloads it live). The real ones stay untouched.

const POLKITD = '/usr/lib/polkit-1/polkitd';
const POLKIT_NAME = 'org.freedesktop.PolicyKit1';
const OUR_ACTIONS = join('build', 'polkit', 'org.opdbus.policy');
const SYSTEM_ACTIONS = '/usr/share/polkit-1/actions';
const SYSTEM_RULES = '/etc/polkit-1/rules.d';
const START_TIMEOUT_MS = 10_000;

const log = (p: HostPaths): string => join(p.dir, 'polkitd.log');
const pidFile = (p: HostPaths): string => join(p.dir, 'polkitd.pid');
const actionsDir = (p: HostPaths): string => join(p.dir, 'polkit', 'actions');

/** The directory of JS rules polkitd reads on the host at dir. */
export const polkitRules = (dir: string): string => join(dir, 'polkit', 'rules.d');

export const polkitd: HostComponent = {
  name: 'polkitd',
  files: ['polkit', 'polkitd.log', 'polkitd.pid'],
  keeps: [],

  env: (paths) => ({ OP_DBUS_SANDBOX_POLKIT_RULES: polkitRules(paths.dir) }),

  async start(ctx) {
    const paths = ctx.paths;
    const actions = actionsDir(paths);
    const rules = polkitRules(paths.dir);
    // polkitd drops to user polkitd, which must read both directories.
    for (const d of [actions, rules]) {
      mkdirSync(d, { recursive: true });
      chmodSync(d, 0o755);
    }
    chmodSync(join(paths.dir, 'polkit'), 0o755);
    for (const f of readdirSync(SYSTEM_ACTIONS)) {
      if (f.endsWith('.policy')) copyFileSync(join(SYSTEM_ACTIONS, f), join(actions, f));
    }
    copyFileSync(join(ctx.projectRoot, OUR_ACTIONS), join(actions, 'org.opdbus.policy'));

    // unshare without --fork execs: the PID we record is polkitd's own
    const script = `mount --bind ${actions} ${SYSTEM_ACTIONS} && mount --bind ${rules} ${SYSTEM_RULES} && exec ${POLKITD} --no-debug`;
    const child = await spawnDetached(
      'unshare',
      ['-m', '--propagation', 'private', 'sh', '-c', script],
      serviceEnv(paths),
      log(paths),
      'polkitd',
    );
    writeFileSync(pidFile(paths), `${child.pid}\n`);
    await waitForOwner(await ctx.bus(), POLKIT_NAME, child, {
      timeoutMs: START_TIMEOUT_MS,
      what: 'polkitd',
      logTail: () => logTail(log(paths)),
    });
  },

  processes: (paths) => pidList(polkitdPid(paths)),

  async stop(paths) {
    const pid = polkitdPid(paths);
    if (pid !== undefined) await stopProcess(pid, 'polkitd', { group: false });
  },

  async status(ctx) {
    const pid = polkitdPid(ctx.paths);
    return { pid: pid ?? null, ...(await ownedBy(await ctx.bus(), POLKIT_NAME, pid)) };
  },
};

/** polkitd's PID, if the process in polkitd.pid is alive and talks to this host's bus. */
function polkitdPid(paths: HostPaths): number | undefined {
  return livePidFromFile(pidFile(paths), (p) =>
    environOf(p).includes(`DBUS_SYSTEM_BUS_ADDRESS=${paths.address}`),
  );
}
