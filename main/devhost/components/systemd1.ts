import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OpError } from '../../common/contract/index.js';
import { ownedBy, waitForOwner } from '../bus-daemon.js';
import { serviceEnv, type HostComponent, type HostPaths } from '../component.js';
import { cmdlineOf, livePidFromFile, logTail, pidList, spawnDetached, stopProcess } from '../processes.js';

// A stand-in for systemd's org.freedesktop.systemd1 on the host's bus (../systemd1/standin.ts), NOT
// systemd: never run systemd here. Its writable unit directory is the host's /etc/systemd/system
// (the systemd plugin's unit_dir, through the core's config), kept across down and up like a real
// host's; after it, this machine's own unit files (read-only), so the units a real Debian host with
// these packages has (openvswitch-switch.service, ...) exist on the host too.

const NAME = 'org.freedesktop.systemd1';
const START_TIMEOUT_MS = 10_000;
// Debian 12 has both (merged /usr); Debian 13 only /usr/lib
const SYSTEM_UNITS = ['/usr/lib/systemd/system', '/lib/systemd/system'];

const log = (p: HostPaths): string => join(p.dir, 'systemd1.log');
const pidFile = (p: HostPaths): string => join(p.dir, 'systemd1.pid');
/** The host's /etc/systemd/system: where the plugin writes unit files, drop-ins, enablement and masks. */
export const unitDir = (p: HostPaths): string => join(p.dir, 'systemd-etc', 'system');

export const systemd1: HostComponent = {
  name: 'systemd1',
  files: ['systemd1.log', 'systemd1.pid'],
  keeps: ['systemd-etc'],

  env: (paths) => ({ OP_DBUS_SYSTEMD_UNIT_DIR: unitDir(paths) }),

  coreConfig: (paths) => ({ systemd: { unit_dir: unitDir(paths) } }),

  async start(ctx) {
    const paths = ctx.paths;
    mkdirSync(unitDir(paths), { recursive: true });
    const script = standInScript(ctx.projectRoot);
    const system = SYSTEM_UNITS.find((d) => existsSync(d));
    const child = await spawnDetached(
      process.execPath,
      [script, paths.address, unitDir(paths), ...(system !== undefined ? [system] : [])],
      serviceEnv(paths),
      log(paths),
      'systemd1 stand-in',
    );
    writeFileSync(pidFile(paths), `${child.pid}\n`);
    await waitForOwner(await ctx.bus(), NAME, child, {
      timeoutMs: START_TIMEOUT_MS,
      what: 'the systemd1 stand-in',
      logTail: () => logTail(log(paths)),
    });
  },

  processes: (paths) => pidList(standInPid(paths)),

  async stop(paths) {
    const pid = standInPid(paths);
    if (pid !== undefined) await stopProcess(pid, 'systemd1 stand-in', { group: false });
  },

  async status(ctx) {
    const pid = standInPid(ctx.paths);
    const owned = await ownedBy(await ctx.bus(), NAME, pid);
    return { pid: pid ?? null, ...owned, detail: `${owned.detail} (a stand-in, not systemd)` };
  },
};

/** The stand-in's compiled entry: beside this module in dist/, or in the project's dist/ when run from sources. */
function standInScript(projectRoot: string): string {
  const beside = fileURLToPath(new URL('../systemd1/standin-main.js', import.meta.url));
  const built = join(projectRoot, 'dist', 'main', 'devhost', 'systemd1', 'standin-main.js');
  const script = [beside, built].find((f) => existsSync(f));
  if (script === undefined) {
    throw new OpError('Internal', `the systemd1 stand-in is not built (${built}): run npm run build`);
  }
  return script;
}

function standInPid(paths: HostPaths): number | undefined {
  return livePidFromFile(pidFile(paths), (p) => cmdlineOf(p).includes(unitDir(paths)));
}
