import { chmodSync, chownSync, mkdirSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { HostComponent, HostPaths } from '../component.js';
import { stopProcess } from '../processes.js';
import { netnsName, pidsInNetns } from './netns.js';

// WireGuard on the development host: the directory of its UAPI sockets and a key directory its core
// accepts. The host starts no wireguard-go itself: as on a real host, where the admin or the plugin
// makes an interface, the wireguard plugin creates each interface a document names (wireguard-go
// here, the kernel module has none) in the host's network namespace, with this directory bound on
// /var/run/wireguard in its own mount namespace. Stopping the host stops those wireguard-go
// processes by PID: the ones in this host's network namespace.

/** The UAPI socket directory (`<interface>.sock`), what `wg` sees as /var/run/wireguard (its parent is bound on /run). */
export const wgRunDir = (p: HostPaths): string => join(p.dir, 'run', 'wireguard');
/** The key directory the host's core accepts (root-owned, 0700): kept across down and up. */
export const wgKeyDir = (p: HostPaths): string => join(p.dir, 'keys');

export const wireguard: HostComponent = {
  name: 'wireguard',
  files: ['run'],
  keeps: ['keys'],

  env: (paths) => ({ OP_DBUS_WG_RUNDIR: wgRunDir(paths), OP_DBUS_KEY_DIR: wgKeyDir(paths) }),

  coreConfig: (paths) => ({
    wireguard: { key_dirs: [wgKeyDir(paths)], uapi_dir: wgRunDir(paths), implementation: 'wireguard-go' },
  }),

  start(ctx) {
    for (const dir of [wgRunDir(ctx.paths), wgKeyDir(ctx.paths)]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chownSync(dir, 0, 0);
      chmodSync(dir, 0o700);
    }
    return Promise.resolve();
  },

  processes: (paths) => wireguardGoPids(paths),

  async stop(paths) {
    for (const pid of wireguardGoPids(paths)) await stopProcess(pid, 'wireguard-go', { group: false });
    // sockets of a wireguard-go that was killed stay behind
    rmSync(join(paths.dir, 'run'), { recursive: true, force: true });
  },

  status(ctx) {
    const pids = wireguardGoPids(ctx.paths);
    let sockets: string[];
    try {
      sockets = readdirSync(wgRunDir(ctx.paths)).filter((f) => f.endsWith('.sock'));
    } catch {
      return Promise.resolve({ pid: null, healthy: false, detail: `${wgRunDir(ctx.paths)} is missing` });
    }
    return Promise.resolve({
      pid: pids[0] ?? null,
      healthy: true,
      detail: `${pids.length} wireguard-go process(es); UAPI sockets: ${sockets.join(', ') || 'none'} in ${wgRunDir(ctx.paths)}`,
    });
  },
};

/** wireguard-go processes of this host: those running in its network namespace (one per host directory). */
function wireguardGoPids(paths: HostPaths): number[] {
  return pidsInNetns(netnsName(paths)).filter((pid) => {
    try {
      return readlinkSync(`/proc/${pid}/exe`).endsWith('/wireguard-go');
    } catch {
      return false;
    }
  });
}
