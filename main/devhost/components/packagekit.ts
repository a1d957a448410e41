import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { OpError } from '../../common/contract/index.js';
import { callMethod, type MessageBus } from '../../common/dbus/calls.js';
import { callBusDaemon, ownerPid } from '../bus-daemon.js';
import { SERVICE_PATH, type HostComponent, type HostPaths } from '../component.js';
import { otherPids, stopProcess } from '../processes.js';
import { run } from '../run.js';
import { servicesDir } from './bus.js';

// A real packagekitd (Debian's, apt backend) on the host's bus, serving a root of its own: an
// overlay of / whose upper layer is on disk in the host directory, so every install and removal
// lands there and this machine's dpkg database is never written. The overlay is mounted where
// readers outside can see it (OP_DBUS_PKG_ROOT: `dpkg-query --admindir "$OP_DBUS_PKG_ROOT/var/lib/dpkg"`).
// packagekitd is D-Bus-activated from the host's own service directory (which wins over the
// distribution's file, which would start it on this machine's root) and runs chrooted into that
// root, in its own mount namespace, with the host's bus socket directory bound onto its /run/dbus
// *before* chroot (a bind made inside reaches the socket through the overlay: ECONNREFUSED). Its
// only package source is a local repository of small .deb packages built here at start.

const PACKAGEKIT = 'org.freedesktop.PackageKit';
const PACKAGEKITD = '/usr/libexec/packagekitd';

const base = (p: HostPaths): string => join(p.dir, 'pk');
/** The merged root packagekitd installs into: OP_DBUS_PKG_ROOT. */
export const pkgRoot = (p: HostPaths): string => join(base(p), 'root');
/** The local repository (Packages, Release and the .debs): OP_DBUS_PKG_REPO. */
export const pkgRepo = (p: HostPaths): string => join(base(p), 'repo');
const upper = (p: HostPaths): string => join(base(p), 'upper');
const work = (p: HostPaths): string => join(base(p), 'work');
const wrapper = (p: HostPaths): string => join(p.dir, 'packagekit-run');
const log = (p: HostPaths): string => join(p.dir, 'packagekit.log');
const activationFile = (p: HostPaths): string => join(servicesDir(p), `${PACKAGEKIT}.service`);

/** The repository's packages: small, dependency-linked, so installs resolve something real. */
export const REPO_PACKAGES: readonly { name: string; version: string; depends?: string; summary: string }[] =
  [
    { name: 'opdbus-hello', version: '1.0.0', summary: 'op-dbus test package: a greeting file' },
    {
      name: 'opdbus-tools',
      version: '2.1.0',
      depends: 'opdbus-hello',
      summary: 'op-dbus test package that depends on opdbus-hello',
    },
    { name: 'opdbus-extra', version: '0.3.0', summary: 'op-dbus test package: another file' },
  ];

export const packagekit: HostComponent = {
  name: 'packagekit',
  files: ['pk', 'packagekit-run', 'packagekit.log', `services/${PACKAGEKIT}.service`],
  keeps: [],

  env: (paths) => ({ OP_DBUS_PKG_ROOT: pkgRoot(paths), OP_DBUS_PKG_REPO: pkgRepo(paths) }),

  coreConfig: (paths) => ({ packagekit: { dpkg_admindir: join(pkgRoot(paths), 'var', 'lib', 'dpkg') } }),

  async start(ctx) {
    const paths = ctx.paths;
    if (!existsSync(PACKAGEKITD))
      throw new OpError('PluginUnavailable', `packagekitd not found at ${PACKAGEKITD}`);
    for (const d of [upper(paths), work(paths), pkgRoot(paths), pkgRepo(paths)])
      mkdirSync(d, { recursive: true });
    await buildRepository(paths);
    await run('mount', [
      '-t',
      'overlay',
      'overlay',
      '-o',
      `lowerdir=/,upperdir=${upper(paths)},workdir=${work(paths)}`,
      pkgRoot(paths),
    ]);
    try {
      // first: from now on a call to PackageKit (apt's own hooks make one) starts ours, never the distribution's
      writeFileSync(wrapper(paths), wrapperScript(paths), { mode: 0o755 });
      writeFileSync(
        activationFile(paths),
        `[D-BUS Service]\nName=${PACKAGEKIT}\nExec=${wrapper(paths)}\nUser=root\n`,
      );
      await callBusDaemon(await ctx.bus(), 'ReloadConfig');
      configureSources(pkgRoot(paths));
      // the package lists of the local repository, inside the root (its own apt, its own lists)
      await run(
        'unshare',
        [
          '-m',
          '--propagation',
          'private',
          'sh',
          '-c',
          inRoot(paths, "apt-get -q -o 'APT::Update::Post-Invoke-Success::=' update"),
        ],
        { timeoutMs: 60_000, env: { PATH: SERVICE_PATH } },
      );
      const connection = await ctx.bus();
      await callMethod(connection, {
        destination: 'org.freedesktop.DBus',
        path: '/org/freedesktop/DBus',
        interface: 'org.freedesktop.DBus',
        member: 'StartServiceByName',
        signature: 'su',
        body: [PACKAGEKIT, 0],
        timeoutMs: 30_000,
      });
      await checkOwner(paths, connection);
    } catch (e) {
      await this.stop(paths).catch(() => undefined);
      throw e;
    }
  },

  processes: (paths) => packagekitdPids(paths),

  async stop(paths) {
    for (const pid of packagekitdPids(paths)) await stopProcess(pid, 'packagekitd', { group: false });
    if (isMounted(pkgRoot(paths))) await run('umount', [pkgRoot(paths)]);
  },

  async status(ctx) {
    const pids = packagekitdPids(ctx.paths);
    const pid = pids[0] ?? null;
    if (!isMounted(pkgRoot(ctx.paths)))
      return { pid, healthy: false, detail: `${pkgRoot(ctx.paths)} is not mounted` };
    if (pid === null) {
      return {
        pid,
        healthy: true,
        detail: `activatable; not running (it exits when idle); root ${pkgRoot(ctx.paths)}`,
      };
    }
    const owner = await ownerPid(await ctx.bus(), PACKAGEKIT);
    return owner !== undefined && pids.includes(owner)
      ? { pid, healthy: true, detail: `owns ${PACKAGEKIT}; root ${pkgRoot(ctx.paths)}` }
      : { pid, healthy: false, detail: `${PACKAGEKIT} is owned by PID ${owner ?? 'none'}, not ours` };
  },
};

/** Builds the .debs with dpkg-deb and indexes them (Packages, Release) as a flat repository. */
async function buildRepository(paths: HostPaths): Promise<void> {
  const build = join(base(paths), 'build');
  for (const pkg of REPO_PACKAGES) {
    const root = join(build, pkg.name);
    mkdirSync(join(root, 'DEBIAN'), { recursive: true });
    mkdirSync(join(root, 'usr', 'share', pkg.name), { recursive: true });
    writeFileSync(
      join(root, 'DEBIAN', 'control'),
      [
        `Package: ${pkg.name}`,
        `Version: ${pkg.version}`,
        'Architecture: all',
        'Maintainer: op-dbus development host <root@localhost>',
        ...(pkg.depends !== undefined ? [`Depends: ${pkg.depends}`] : []),
        'Section: misc',
        'Priority: optional',
        `Description: ${pkg.summary}`,
        '',
      ].join('\n'),
    );
    writeFileSync(join(root, 'usr', 'share', pkg.name, 'README'), `${pkg.name} ${pkg.version}\n`);
    await run('dpkg-deb', [
      '--root-owner-group',
      '--build',
      root,
      join(pkgRepo(paths), `${pkg.name}_${pkg.version}_all.deb`),
    ]);
  }
  rmSync(build, { recursive: true, force: true });
  const repo = pkgRepo(paths);
  const packages = await runIn(repo, 'dpkg-scanpackages', ['--multiversion', '.', '/dev/null']);
  writeFileSync(join(repo, 'Packages'), packages);
  writeFileSync(join(repo, 'Release'), releaseFile(packages));
}

/** A flat repository's Release (what apt-ftparchive release writes; apt-utils is not needed for it). */
function releaseFile(packages: string): string {
  const size = Buffer.byteLength(packages);
  const sum = (algo: string): string => createHash(algo).update(packages).digest('hex');
  return [
    'Origin: op-dbus development host',
    'Label: op-dbus local repository',
    `Date: ${new Date().toUTCString()}`,
    'MD5Sum:',
    ` ${sum('md5')} ${size} Packages`,
    'SHA256:',
    ` ${sum('sha256')} ${size} Packages`,
    '',
  ].join('\n');
}

function runIn(cwd: string, command: string, args: string[]): Promise<string> {
  return run('sh', ['-c', 'cd "$0" && exec "$@"', cwd, command, ...args]);
}

/** The root's only source is the local repository (the distribution's are removed in the upper layer only). */
function configureSources(root: string): void {
  const apt = join(root, 'etc', 'apt');
  for (const f of readdirSync(join(apt, 'sources.list.d')))
    rmSync(join(apt, 'sources.list.d', f), { force: true });
  rmSync(join(apt, 'sources.list'), { force: true });
  writeFileSync(join(apt, 'sources.list.d', 'opdbus-local.list'), 'deb [trusted=yes] file:/srv/repo ./\n');
  mkdirSync(join(root, 'srv', 'repo'), { recursive: true });
}

/** A shell command that runs cmd chrooted into the root with /dev, /sys, /proc, a fresh /run, the bus and the repo. */
function inRoot(paths: HostPaths, cmd: string): string {
  const r = pkgRoot(paths);
  return [
    `mount --rbind /dev ${r}/dev`,
    `mount --rbind /sys ${r}/sys`,
    `mount -t tmpfs tmpfs ${r}/run`,
    `mkdir -p ${r}/run/dbus`,
    `mount --bind ${paths.dir} ${r}/run/dbus`,
    `mount --bind ${pkgRepo(paths)} ${r}/srv/repo`,
    `exec chroot ${r} sh -c 'mount -t proc proc /proc && exec ${cmd}'`,
  ].join(' && ');
}

/** The Exec of the activation file: packagekitd in its root, in a mount namespace of its own. */
function wrapperScript(paths: HostPaths): string {
  return `#!/bin/sh
exec >>${log(paths)} 2>&1
export PATH=${SERVICE_PATH}
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket
exec unshare -m --propagation private sh -c "${inRoot(paths, `${PACKAGEKITD} --keep-environment`)}"
`;
}

async function checkOwner(paths: HostPaths, connection: MessageBus): Promise<void> {
  const owner = await ownerPid(connection, PACKAGEKIT);
  if (owner === undefined || !packagekitdPids(paths).includes(owner)) {
    throw new OpError(
      'Internal',
      `${PACKAGEKIT} is owned by PID ${owner ?? 'none'}, not the host's packagekitd`,
    );
  }
}

/** packagekitd processes of this host: those whose root is the host's package root. */
function packagekitdPids(paths: HostPaths): number[] {
  const root = pkgRoot(paths);
  return otherPids().filter((pid) => {
    try {
      return readlinkSync(`/proc/${pid}/root`) === root;
    } catch {
      return false;
    }
  });
}

function isMounted(dir: string): boolean {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[4] === dir);
  } catch {
    return false;
  }
}
