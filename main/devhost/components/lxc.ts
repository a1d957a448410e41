import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { OpError } from '../../common/contract/index.js';
import type { HostComponent, HostPaths } from '../component.js';
import { cmdlineOf, otherPids, stopProcess } from '../processes.js';
import { run } from '../run.js';
import { hostNamespaceCommand } from './netns.js';

// LXC on the development host: an LXC path of its own (OP_DBUS_LXC_PATH, for `lxc-* -P`), a storage
// named `local` whose vztmpl/ holds a busybox rootfs tarball built here from busybox-static (zst,
// through the zstd tool), and a directory that mount points may bind from. The containers are the
// core's (its lxc-start calls inherit the host's network namespace); `down` stops every container
// under the path, in that namespace, and removes what LXC leaves behind: its /run/lxc/lock
// directory for the path and the host's cgroups (one prefix per host, so two hosts never share one).

const BUSYBOX = '/bin/busybox';
/** The template's id on this host: `local:vztmpl/<TEMPLATE_FILE>`. */
export const TEMPLATE_FILE = 'busybox-rootfs_amd64.tar.zst';

export const lxcPath = (p: HostPaths): string => join(p.dir, 'lxc');
export const lxcStorage = (p: HostPaths): string => join(p.dir, 'lxc-storage');
export const lxcMountRoot = (p: HostPaths): string => join(p.dir, 'lxc-mounts');
/** The cgroup directory (in every hierarchy) under which this host's containers and monitors live. */
export const lxcCgroupPrefix = (p: HostPaths): string =>
  `opdbus-${createHash('sha256').update(p.dir).digest('hex').slice(0, 10)}`;

export const lxc: HostComponent = {
  name: 'lxc',
  files: ['lxc', 'lxc-storage', 'lxc-mounts'],
  keeps: [],

  env: (paths) => ({ OP_DBUS_LXC_PATH: lxcPath(paths), OP_DBUS_LXC_STORAGE: lxcStorage(paths) }),

  coreConfig: (paths) => ({
    lxc: {
      lxcpath: lxcPath(paths),
      storages: { local: lxcStorage(paths) },
      mount_roots: [lxcMountRoot(paths)],
      cgroup_prefix: lxcCgroupPrefix(paths),
    },
  }),

  async start(ctx) {
    const paths = ctx.paths;
    if (!existsSync(BUSYBOX)) {
      throw new OpError('PluginUnavailable', `${BUSYBOX} not found: install busybox-static (see .ci/setup)`);
    }
    // an unprivileged container's root (uid 100000) walks these paths to its rootfs
    chmodSync(paths.dir, 0o755);
    for (const d of [lxcPath(paths), lxcMountRoot(paths), join(lxcStorage(paths), 'vztmpl')]) {
      mkdirSync(d, { recursive: true, mode: 0o755 });
    }
    const tarball = join(lxcStorage(paths), 'vztmpl', TEMPLATE_FILE);
    if (!existsSync(tarball)) await buildBusyboxTemplate(join(lxcStorage(paths), '.build'), tarball);
  },

  processes: (paths) => monitorPids(lxcPath(paths)),

  async stop(paths) {
    const path = lxcPath(paths);
    if (existsSync(path)) {
      const names = readdirSync(path, { withFileTypes: true })
        .filter((e) => e.isDirectory() && existsSync(join(path, e.name, 'config')))
        .map((e) => e.name);
      // in the host's namespaces: the monitors' command sockets are bound to its network namespace
      await Promise.all(
        names.map(async (name) => {
          const [cmd, ...args] = hostNamespaceCommand(paths, ['lxc-stop', '-P', path, '-n', name, '-k']);
          await run(cmd ?? 'unshare', args, { timeoutMs: 30_000 }).catch(() => undefined);
        }),
      );
    }
    // a monitor that outlived its container (or a namespace already gone) is stopped by PID
    for (const pid of monitorPids(path)) await stopProcess(pid, 'lxc monitor', { group: false });
    removeLockDir(path);
    removeCgroups(lxcCgroupPrefix(paths));
  },

  status(ctx) {
    const path = lxcPath(ctx.paths);
    const tarball = join(lxcStorage(ctx.paths), 'vztmpl', TEMPLATE_FILE);
    const ok = existsSync(path) && existsSync(tarball);
    const running = monitorPids(path).length;
    return Promise.resolve({
      pid: null,
      healthy: ok,
      detail: ok
        ? `LXC path ${path}, ${running} container(s) running; template local:vztmpl/${TEMPLATE_FILE}`
        : `LXC path ${path} or its template is missing`,
    });
  },
};

/** LXC's lock directory for the path (/run/lxc/lock/<path>), and its parents as far as they are empty. */
function removeLockDir(path: string): void {
  const locks = '/run/lxc/lock';
  let dir = join(locks, path);
  rmSync(dir, { recursive: true, force: true });
  for (dir = dirname(dir); dir.startsWith(locks + '/'); dir = dirname(dir)) {
    try {
      rmdirSync(dir);
    } catch {
      return; // not empty (another LXC path's locks), or gone
    }
  }
}

/** The PIDs of LXC's monitors for containers under path (`[lxc monitor] <path> <name>`). */
function monitorPids(path: string): number[] {
  const prefix = `[lxc monitor] ${path} `;
  return otherPids().filter((pid) => cmdlineOf(pid).join(' ').startsWith(prefix));
}

/** Removes the host's cgroup directories (deepest first) and empty `lxc.pivot` ones LXC left at the roots. */
function removeCgroups(prefix: string): void {
  const roots = ['/sys/fs/cgroup'];
  try {
    for (const e of readdirSync('/sys/fs/cgroup', { withFileTypes: true })) {
      if (e.isDirectory() && existsSync(join('/sys/fs/cgroup', e.name, 'cgroup.procs')))
        roots.push(join('/sys/fs/cgroup', e.name));
    }
  } catch {
    return;
  }
  // a process-grouping parent (e.g. memory/process_api/<id>/) is where a relative cgroup lands
  const parents = new Set<string>();
  const find = (dir: string, depth: number): void => {
    if (depth > 3) return;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      if (e.name === prefix || e.name === 'lxc.pivot') parents.add(join(dir, e.name));
      else if (depth < 3 && !e.name.startsWith('lxc.') && !e.name.startsWith('opdbus-'))
        find(join(dir, e.name), depth + 1);
    }
  };
  for (const r of roots) find(r, 0);
  for (const dir of parents) removeTree(dir);
}

/** rmdir of a cgroup tree, children first; a cgroup that still has processes stays. */
function removeTree(dir: string): void {
  try {
    for (const e of readdirSync(dir, { withFileTypes: true }))
      if (e.isDirectory()) removeTree(join(dir, e.name));
    rmdirSync(dir);
  } catch {
    // busy (another host's LXC is using an lxc.pivot) or already gone
  }
}

/**
 * A busybox rootfs: /bin/busybox with a link per applet, an inittab whose init stays up (halted by
 * SIGUSR1, as LXC's busybox template does), root's passwd and group; packed with tar through zstd.
 */
async function buildBusyboxTemplate(build: string, tarball: string): Promise<void> {
  rmSync(build, { recursive: true, force: true });
  const root = join(build, 'rootfs');
  for (const d of [
    'bin',
    'sbin',
    'usr/bin',
    'usr/sbin',
    'etc/init.d',
    'proc',
    'sys',
    'dev',
    'tmp',
    'root',
    'run',
    'var/log',
  ]) {
    mkdirSync(join(root, d), { recursive: true, mode: 0o755 });
  }
  chmodSync(join(root, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  const applets = (await run(BUSYBOX, ['--list-full']))
    .split('\n')
    .filter((a) => /^[a-z/]+[a-z0-9_.[-]+$/.test(a));
  for (const applet of applets) {
    const at = join(root, applet);
    if (!existsSync(at) && applet !== 'bin/busybox') {
      mkdirSync(join(at, '..'), { recursive: true });
      symlinkSync('/bin/busybox', at);
    }
  }
  writeFileSync(join(root, 'etc/inittab'), '::sysinit:/etc/init.d/rcS\n::shutdown:/bin/umount -a -r\n');
  writeFileSync(
    join(root, 'etc/init.d/rcS'),
    '#!/bin/sh\n# the container is up: LXC set its hostname and addresses\nmkdir -p /run /var/log\n',
    {
      mode: 0o755,
    },
  );
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
  writeFileSync(join(root, 'etc/hostname'), 'busybox\n');
  const partial = `${tarball}.partial`;
  await run(
    'tar',
    [
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      '--use-compress-program=zstd',
      '-C',
      root,
      '-cf',
      partial,
      '.',
    ],
    {
      timeoutMs: 120_000,
    },
  );
  renameSync(partial, tarball);
  rmSync(build, { recursive: true, force: true });
}
