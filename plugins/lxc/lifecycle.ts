import {
  closeSync,
  constants,
  existsSync,
  fchownSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { lastValue, parseConfig, renderConfig, type Meta, type ParsedConfig } from './config-file.js';
import { tool } from './host.js';
import { MIB, needsRestart, type LxcSettings, type Spec } from './index.js';
import { createSubvolume, deleteSubvolume, isSubvolume, onBtrfs, setLimit } from './rootfs.js';
import { resolveTemplate } from './templates.js';

// What apply and rollback do to one container: create (unpack the template, shift its owners for an
// unprivileged container, write the config, start), modify (rewrite the managed block; memory, swap,
// cores and hostname live where it runs; network and mounts by a restart), destroy, and restore
// from a checkpoint. Every tool call is an lxc-* (or tar) argument array, always with -P.

const ID_RANGE = 65536;
const START_WAIT_S = 15;
const STOP_TIMEOUT_S = 10;
/** Files in the rootfs the plugin writes (and a checkpoint keeps). */
const GUEST_FILES = ['etc/hostname', 'etc/resolv.conf'] as const;

const containerDir = (s: LxcSettings, id: string): string => join(s.lxcpath, id);
const configFile = (s: LxcSettings, id: string): string => join(s.lxcpath, id, 'config');

/** The rootfs of a container, from its config's lxc.rootfs.path (a directory). */
function rootfsOf(s: LxcSettings, id: string, config: ParsedConfig | undefined): string {
  const v = config === undefined ? undefined : lastValue(config, 'lxc.rootfs.path');
  return v === undefined ? join(containerDir(s, id), 'rootfs') : v.replace(/^dir:/, '');
}

/** The managed block of a container's config: every key the desired state sets. */
export function managedBlock(s: LxcSettings, want: Spec): [string, string][] {
  const b: [string, string][] = [['lxc.uts.name', want.hostname]];
  if (want.network_type === 'none' || want.bridge === undefined) {
    b.push(['lxc.net.0.type', 'empty']);
  } else {
    b.push(['lxc.net.0.type', 'veth'], ['lxc.net.0.link', want.bridge], ['lxc.net.0.flags', 'up']);
    b.push(['lxc.net.0.name', 'eth0']);
    if (want.veth !== undefined) b.push(['lxc.net.0.veth.pair', want.veth]);
    if (want.ip !== undefined && want.ip !== 'dhcp') b.push(['lxc.net.0.ipv4.address', want.ip]);
    if (want.gw !== undefined) b.push(['lxc.net.0.ipv4.gateway', want.gw]);
  }
  if (want.memory !== undefined) {
    const mem = want.memory * MIB;
    if (s.layout === 'v1') {
      b.push(['lxc.cgroup.memory.limit_in_bytes', String(mem)]);
      if (s.swapAccounting && want.swap !== undefined)
        b.push(['lxc.cgroup.memory.memsw.limit_in_bytes', String(mem + want.swap * MIB)]);
    } else {
      b.push(['lxc.cgroup2.memory.max', String(mem)]);
      if (want.swap !== undefined) b.push(['lxc.cgroup2.memory.swap.max', String(want.swap * MIB)]);
    }
  }
  if (want.cores !== undefined) {
    const quota = String(Math.round(want.cores * 100_000));
    if (s.layout === 'v1')
      b.push(['lxc.cgroup.cpu.cfs_period_us', '100000'], ['lxc.cgroup.cpu.cfs_quota_us', quota]);
    else b.push(['lxc.cgroup2.cpu.max', `${quota} 100000`]);
  }
  b.push(['lxc.start.auto', want.onboot ? '1' : '0']);
  if (want.startup?.order !== undefined) b.push(['lxc.start.order', String(want.startup.order)]);
  if (want.startup?.up !== undefined) b.push(['lxc.start.delay', String(want.startup.up)]);
  for (const m of Object.values(want.mps)) {
    const isDir = lstatSync(m.volume).isDirectory();
    const options = ['bind', ...(m.ro ? ['ro'] : []), isDir ? 'create=dir' : 'create=file'].join(',');
    b.push(['lxc.mount.entry', `${m.volume} ${m.mp.replace(/^\/+/, '')} none ${options} 0 0`]);
  }
  return b;
}

function metaOf(s: LxcSettings, want: Spec): Meta {
  const meta: Meta & { swap?: number } = { network_type: want.network_type };
  if (want.template !== undefined) meta.template = want.template;
  if (want.nameserver !== undefined) meta.nameserver = want.nameserver;
  if (want.rootfs !== undefined) meta.rootfs = want.rootfs;
  if (want.ip === 'dhcp') meta.ip = 'dhcp';
  // without swap accounting LXC has no key for it: kept here, so a re-plan shows no change
  if (s.layout === 'v1' && !s.swapAccounting && want.swap !== undefined) meta.swap = want.swap;
  const mps = Object.entries(want.mps);
  if (mps.length > 0) meta.mps = Object.fromEntries(mps.map(([name, m]) => [name, m.mp]));
  return meta;
}

/** The lines written once, at create, outside the managed block. */
function baseLines(s: LxcSettings, want: Spec, rootfs: string): string[] {
  const lines = [
    `# Container ${want.id}, created by operation-dbus from ${want.template ?? 'no template'}`,
    'lxc.include = /usr/share/lxc/config/common.conf',
  ];
  if (want.unprivileged) {
    lines.push('lxc.include = /usr/share/lxc/config/userns.conf');
    lines.push(`lxc.idmap = u 0 ${s.idmapBase} ${ID_RANGE}`, `lxc.idmap = g 0 ${s.idmapBase} ${ID_RANGE}`);
  }
  lines.push(`lxc.rootfs.path = dir:${rootfs}`, 'lxc.apparmor.profile = unconfined', 'lxc.autodev = 1');
  if (isBusyboxInit(rootfs)) lines.push('lxc.signal.halt = SIGUSR1');
  lines.push('lxc.cgroup.relative = 1');
  if (s.cgroupPrefix !== undefined) {
    lines.push(
      `lxc.cgroup.dir.container = ${s.cgroupPrefix}/${want.id}`,
      `lxc.cgroup.dir.monitor = ${s.cgroupPrefix}/${want.id}.monitor`,
      `lxc.cgroup.dir.monitor.pivot = ${s.cgroupPrefix}/pivot`,
    );
  }
  return lines;
}

/** busybox's init halts on SIGUSR1, not on LXC's default SIGPWR. */
function isBusyboxInit(rootfs: string): boolean {
  try {
    return /busybox$/.test(readlinkSync(join(rootfs, 'sbin/init')));
  } catch {
    return false;
  }
}

/** Writes a file in a container's rootfs, never through a symlink, owned by its root (uid). */
function writeGuestFile(rootfs: string, rel: string, text: string, uid: number): void {
  const parent = join(rootfs, dirname(rel));
  const realRoot = realpathSync(rootfs);
  if (!existsSync(parent)) mkdirSync(parent, { recursive: true });
  const realParent = realpathSync(parent);
  if (realParent !== realRoot && !realParent.startsWith(realRoot + '/'))
    throw new Error(`${rel} in ${rootfs} leads outside the rootfs; not written`);
  const fd = openSync(
    join(realParent, rel.split('/').pop() as string),
    constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
    0o644,
  );
  try {
    writeSync(fd, text);
    fchownSync(fd, uid, uid);
  } finally {
    closeSync(fd);
  }
}

function readGuestFile(rootfs: string, rel: string): string | null {
  try {
    if (lstatSync(join(rootfs, rel)).isSymbolicLink()) return null;
    return readFileSync(join(rootfs, rel), 'utf8');
  } catch {
    return null;
  }
}

/** Shifts every owner in the rootfs by the id map's base (an unprivileged container's files). */
function shiftOwners(root: string, base: number): void {
  const walk = (path: string): void => {
    const st = lstatSync(path);
    lchownSync(path, st.uid + base, st.gid + base);
    if (st.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
  };
  walk(root);
}

function writeAtomically(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text, { mode: 0o644 });
  renameSync(`${file}.tmp`, file);
}

async function start(s: LxcSettings, id: string): Promise<void> {
  const log = join(containerDir(s, id), 'lxc.log');
  try {
    await tool('lxc-start', ['-P', s.lxcpath, '-n', id, '-d', '-o', log, '-l', 'ERROR']);
    await tool('lxc-wait', ['-P', s.lxcpath, '-n', id, '-s', 'RUNNING', '-t', String(START_WAIT_S)]);
  } catch (e) {
    let tail = '';
    try {
      tail = readFileSync(log, 'utf8').trim().split('\n').slice(-3).join(' | ');
    } catch {
      // no log
    }
    throw new Error(
      `container ${id} did not start: ${e instanceof Error ? e.message : String(e)}${tail ? ` (log: ${tail})` : ''}`,
    );
  }
}

async function stop(s: LxcSettings, id: string, kill = false): Promise<void> {
  await tool('lxc-stop', ['-P', s.lxcpath, '-n', id, ...(kill ? ['-k'] : ['-t', String(STOP_TIMEOUT_S)])], {
    timeoutMs: (STOP_TIMEOUT_S + 10) * 1000,
  });
}

/** Sets a cgroup value of a running container through LXC (the cgroup LXC really put it in). */
async function setCgroup(s: LxcSettings, id: string, key: string, value: string): Promise<void> {
  await tool('lxc-cgroup', ['-P', s.lxcpath, '-n', id, key, value]);
}

export async function createContainer(s: LxcSettings, want: Spec, signal: AbortSignal): Promise<void> {
  if (want.template === undefined) throw new Error(`container ${want.id}: no template`);
  const t = resolveTemplate(want.template, s.storages);
  if ('error' in t) throw new Error(`container ${want.id}: ${t.error}`);
  mkdirSync(s.lxcpath, { recursive: true, mode: 0o755 });
  const dir = containerDir(s, want.id);
  mkdirSync(dir, { mode: 0o755 }); // fails when it exists: never unpack over another container
  const rootfs = join(dir, 'rootfs');
  // on BTRFS a subvolume, so that a size can bound it (now or by a later change); bounded before the unpack
  if (onBtrfs(dir)) {
    await createSubvolume(rootfs);
    if (want.rootfs !== undefined) await setLimit(rootfs, want.rootfs);
  } else {
    mkdirSync(rootfs, { mode: 0o755 });
  }
  await tool('tar', ['-x', '--numeric-owner', '-f', t.file, '-C', rootfs], { timeoutMs: 300_000 });
  signal.throwIfAborted();
  const uid = want.unprivileged ? s.idmapBase : 0;
  if (want.unprivileged) shiftOwners(rootfs, s.idmapBase);
  writeGuestFile(rootfs, 'etc/hostname', `${want.hostname}\n`, uid);
  if (want.nameserver !== undefined)
    writeGuestFile(rootfs, 'etc/resolv.conf', `nameserver ${want.nameserver}\n`, uid);
  writeAtomically(
    join(dir, 'config'),
    renderConfig(baseLines(s, want, rootfs), managedBlock(s, want), metaOf(s, want)),
  );
  if (want.state === 'running') await start(s, want.id);
}

export async function modifyContainer(
  s: LxcSettings,
  cur: Spec,
  want: Spec,
  config: ParsedConfig,
  signal: AbortSignal,
): Promise<void> {
  const id = want.id;
  const rootfs = rootfsOf(s, id, config);
  const uid = cur.unprivileged ? s.idmapBase : 0;
  writeAtomically(configFile(s, id), renderConfig(config.outside, managedBlock(s, want), metaOf(s, want)));
  if (cur.hostname !== want.hostname) writeGuestFile(rootfs, 'etc/hostname', `${want.hostname}\n`, uid);
  if (want.nameserver !== undefined && cur.nameserver !== want.nameserver)
    writeGuestFile(rootfs, 'etc/resolv.conf', `nameserver ${want.nameserver}\n`, uid);
  // the limit in force may differ from the recorded size (lost out of band): set whenever a size is wanted
  if ((want.rootfs !== undefined || cur.rootfs !== undefined) && isSubvolume(rootfs))
    await changeLimit(rootfs, want.rootfs);
  signal.throwIfAborted();
  if (cur.state === 'running') {
    if (want.state === 'stopped') return stop(s, id);
    if (needsRestart(cur, want)) {
      await stop(s, id);
      return start(s, id);
    }
    await setLive(s, cur, want);
  } else if (want.state === 'running') {
    await start(s, id);
  }
}

/** Memory, swap and cores of a running container through its cgroup; the hostname inside it. */
async function setLive(s: LxcSettings, cur: Spec, want: Spec): Promise<void> {
  const id = want.id;
  if (want.memory !== undefined && (cur.memory !== want.memory || cur.swap !== want.swap)) {
    const mem = String(want.memory * MIB);
    if (s.layout === 'v1') {
      const memsw =
        want.swap !== undefined && s.swapAccounting ? String((want.memory + want.swap) * MIB) : undefined;
      // memory.limit_in_bytes may never exceed memsw: raise memsw first when growing, lower it last when shrinking
      const growing = want.memory > (cur.memory ?? 0);
      if (memsw !== undefined && growing) await setCgroup(s, id, 'memory.memsw.limit_in_bytes', memsw);
      await setCgroup(s, id, 'memory.limit_in_bytes', mem);
      if (memsw !== undefined && !growing) await setCgroup(s, id, 'memory.memsw.limit_in_bytes', memsw);
    } else {
      await setCgroup(s, id, 'memory.max', mem);
      if (want.swap !== undefined) await setCgroup(s, id, 'memory.swap.max', String(want.swap * MIB));
    }
  }
  if (cur.cores !== want.cores) {
    const quota = want.cores === undefined ? undefined : String(Math.round(want.cores * 100_000));
    if (s.layout === 'v1') {
      await setCgroup(s, id, 'cpu.cfs_period_us', '100000');
      await setCgroup(s, id, 'cpu.cfs_quota_us', quota ?? '-1');
    } else {
      await setCgroup(s, id, 'cpu.max', quota === undefined ? 'max 100000' : `${quota} 100000`);
    }
  }
  if (cur.hostname !== want.hostname) {
    await tool('lxc-attach', ['-P', s.lxcpath, '-n', id, '--', 'hostname', want.hostname]);
  }
}

/** A subvolume's limit to size (none when undefined; with quotas off there is no limit to remove). */
async function changeLimit(rootfs: string, size: string | undefined): Promise<void> {
  try {
    await setLimit(rootfs, size);
  } catch (e) {
    if (size !== undefined || !/not enabled/i.test(e instanceof Error ? e.message : String(e))) throw e;
  }
}

/** Deletes a container's rootfs when it is a BTRFS subvolume (LXC's dir backend does not cross into one). */
async function removeSubvolume(rootfs: string, warn?: (m: string) => void): Promise<void> {
  if (!isSubvolume(rootfs)) return;
  const left = await deleteSubvolume(rootfs);
  if (left !== undefined) warn?.(left);
}

export async function destroyContainer(
  s: LxcSettings,
  id: string,
  state: string | undefined,
  warn?: (m: string) => void,
): Promise<void> {
  if (state !== undefined && state !== 'STOPPED') await stop(s, id, true);
  let config: ParsedConfig | undefined;
  try {
    config = parseConfig(readFileSync(configFile(s, id), 'utf8'));
  } catch {
    config = undefined;
  }
  await removeSubvolume(rootfsOf(s, id, config), warn);
  if (existsSync(configFile(s, id))) await tool('lxc-destroy', ['-P', s.lxcpath, '-n', id]);
  rmSync(containerDir(s, id), { recursive: true, force: true });
}

/** What a checkpoint keeps of one container: enough to put it back, or to remove it when it is new. */
export interface Saved {
  existed: boolean;
  config?: string;
  running?: boolean;
  files?: Record<string, string | null>;
}

export function snapshotOf(s: LxcSettings, id: string, state: string | undefined): Saved {
  let text: string;
  try {
    text = readFileSync(configFile(s, id), 'utf8');
  } catch {
    return { existed: false };
  }
  const rootfs = rootfsOf(s, id, parseConfig(text));
  const files: Record<string, string | null> = {};
  for (const f of GUEST_FILES) files[f] = readGuestFile(rootfs, f);
  return { existed: true, config: text, running: state === 'RUNNING', files };
}

/** Rollback of one container to its checkpoint; safe to run twice. */
export async function restoreContainer(
  s: LxcSettings,
  id: string,
  saved: Saved,
  state: string | undefined,
  warn: (m: string) => void,
): Promise<void> {
  const dir = containerDir(s, id);
  if (!saved.existed) {
    if (state !== undefined && state !== 'STOPPED') await stop(s, id, true);
    await removeSubvolume(join(dir, 'rootfs'), warn);
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    return;
  }
  if (saved.config === undefined) return;
  let now: string;
  try {
    now = readFileSync(configFile(s, id), 'utf8');
  } catch {
    warn(`container ${id} was destroyed; a destroyed container cannot be restored`);
    return;
  }
  const running = state === 'RUNNING';
  const changed = now !== saved.config;
  if (changed) {
    writeAtomically(configFile(s, id), saved.config);
    const config = parseConfig(saved.config);
    const rootfs = rootfsOf(s, id, config);
    const uid = config.entries.some((e) => e.key === 'lxc.idmap') ? s.idmapBase : 0;
    for (const [f, text] of Object.entries(saved.files ?? {})) {
      if (text !== null && readGuestFile(rootfs, f) !== text) writeGuestFile(rootfs, f, text, uid);
    }
    const size = config.meta?.rootfs;
    if (parseConfig(now).meta?.rootfs !== size && isSubvolume(rootfs)) await changeLimit(rootfs, size);
  }
  if (running && (!saved.running || changed)) await stop(s, id);
  if (saved.running === true && (!running || changed)) await start(s, id);
}
