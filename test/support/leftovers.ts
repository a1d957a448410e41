import { readdirSync, readFileSync, type Dirent } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';

// What a test run leaves on the machine (DESIGN.md section 8: every test cleans up what it started):
// a snapshot before the suite and one after, compared. The check cannot tell who made a change, so
// run nothing else on the machine meanwhile (another test run's sandbox would be named too).

/** Where the check looks: this machine's places by default; the checker's own test passes others. */
export interface HostPlaces {
  tmp: string;
  home: string;
  /** What `ip netns list` reads. */
  netnsDir: string;
  /** What `losetup -a` reads: an attached loop device has loop/backing_file. */
  blockDir: string;
  proc: string;
  /** LXC's lock directories (/run/lxc/lock/<lxcpath>/), which LXC writes even with -P. */
  lxcLockDir?: string;
  /** The cgroup hierarchies' mount point: a development host's containers get cgroups below it. */
  cgroupDir?: string;
}

export function hostPlaces(): HostPlaces {
  return {
    tmp: '/tmp',
    home: homedir(),
    netnsDir: '/run/netns',
    blockDir: '/sys/block',
    proc: '/proc',
    lxcLockDir: '/run/lxc/lock',
    cgroupDir: '/sys/fs/cgroup',
  };
}

/** Per kind of thing left behind: an identity (stable while the thing exists) and how to name it to a person. */
export type HostSnapshot = Record<LeftoverKind, Map<string, string>>;
type LeftoverKind =
  'in /tmp' | 'in $HOME' | 'process' | 'mount' | 'network namespace' | 'loop device' | 'LXC lock' | 'cgroup';

// Deep enough for the witness's ~/.local/state/op-dbus/witness/<host>.json when its parents exist;
// node_modules and .git are skipped, the depth keeps a developer's large home quick to walk.
const HOME_DEPTH = 5;
const SKIPPED_IN_HOME = new Set(['node_modules', '.git']);
// npm's own debug logs: `npm test` runs npm commands around the suite (and a developer's other npm
// commands run meanwhile); npm writes one per command and keeps the last ten (logs-max). No test writes there.
const SKIPPED_PATHS_IN_HOME = new Set(['.npm/_logs']);
// The daemons a sandbox starts, by the basename of argv[0]; and the scripts and binary of op-dbus
// itself (the core, serve, a CLI left waiting), by the basename of argv[0] or argv[1].
const DAEMONS = new Set([
  'dbus-daemon',
  'polkitd',
  'systemd-hostnamed',
  'systemd-timedated',
  'systemd-localed',
  'ovsdb-server',
  'ovs-vswitchd',
  'wireguard-go',
  'lxc-start',
  'packagekitd',
  'xdg-dbus-proxy',
  'bwrap',
]);
const OP_DBUS = new Set(['op-dbus', 'op-dbus.js', 'serve-main.js']);

/** What is on the machine now, of each kind the check watches. */
export function snapshotHost(places: HostPlaces = hostPlaces()): HostSnapshot {
  return {
    'in /tmp': named(listDirectory(places.tmp).map((e) => join(places.tmp, e.name))),
    'in $HOME': named(walk(places.home, '', HOME_DEPTH).map((p) => join(places.home, p))),
    process: watchedProcesses(places.proc),
    mount: mounts(places.proc),
    'network namespace': named(listDirectory(places.netnsDir).map((e) => e.name)),
    'loop device': loopDevices(places.blockDir),
    'LXC lock': places.lxcLockDir === undefined ? new Map() : named(lxcLocks(places.lxcLockDir)),
    cgroup: places.cgroupDir === undefined ? new Map() : named(hostCgroups(places.cgroupDir)),
  };
}

/** What is in `after` and was not in `before`, one line each; a new directory is named, not its contents. */
export function leftovers(before: HostSnapshot, after: HostSnapshot): string[] {
  const lines: string[] = [];
  for (const kind of Object.keys(after) as LeftoverKind[]) {
    const added = [...after[kind]].filter(([key]) => !before[kind].has(key));
    const addedKeys = new Set(added.map(([key]) => key));
    for (const [key, description] of added) {
      if (kind === 'in $HOME' && addedKeys.has(dirname(key))) continue;
      lines.push(`${kind}: ${description}`);
    }
  }
  return lines;
}

/**
 * For a vitest globalSetup: snapshots the machine now and returns the teardown that, after the last
 * test file, fails the run naming what the tests left behind. `runnerOwn` are paths the test runner
 * itself removes after the teardown (vitest's project.tmpDir).
 */
export function leftoverCheck(runnerOwn: string[] = [], places: HostPlaces = hostPlaces()): () => void {
  const before = snapshotHost(places);
  return () => {
    const after = snapshotHost(places);
    for (const kind of ['in /tmp', 'in $HOME'] as const) {
      for (const path of after[kind].keys())
        if (runnerOwn.some((own) => path === own || path.startsWith(`${own}/`))) after[kind].delete(path);
    }
    const left = leftovers(before, after);
    if (left.length === 0) return;
    process.stderr.write(
      `\nThe tests left this behind (each test must remove what it made and stop what it started):\n${left.map((l) => `  ${l}\n`).join('')}`,
    );
    // vitest prints an error thrown from a global teardown but still exits 0
    process.exitCode = 1;
  };
}

function named(keys: string[]): Map<string, string> {
  return new Map(keys.map((k) => [k, k]));
}

function listDirectory(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return []; // absent (no /run/netns until a namespace is made) or unreadable: nothing to compare
  }
}

/** Paths relative to root, down to depth levels; symbolic links are not followed. */
function walk(root: string, relative: string, depth: number): string[] {
  if (depth === 0) return [];
  const out: string[] = [];
  for (const entry of listDirectory(join(root, relative))) {
    const path = relative === '' ? entry.name : `${relative}/${entry.name}`;
    if (SKIPPED_PATHS_IN_HOME.has(path)) continue;
    out.push(path);
    if (entry.isDirectory() && !SKIPPED_IN_HOME.has(entry.name)) out.push(...walk(root, path, depth - 1));
  }
  return out;
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined; // a process that exited meanwhile, a device detached meanwhile
  }
}

/** The processes of the kinds a sandbox starts, keyed by PID and start time (a PID is reused). */
function watchedProcesses(proc: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of listDirectory(proc)) {
    if (!/^\d+$/.test(entry.name)) continue;
    const argv = (readText(join(proc, entry.name, 'cmdline')) ?? '').split('\0').filter((a) => a !== '');
    const [first = '', second = ''] = argv.map((a) => basename(a));
    // LXC's monitor renames itself: argv[0] is "[lxc monitor] <lxcpath> <name>"
    const monitor = argv[0]?.startsWith('[lxc monitor] ') === true;
    if (!monitor && !DAEMONS.has(first) && !OP_DBUS.has(first) && !OP_DBUS.has(second)) continue;
    // field 22 of stat is the start time; fields are counted after the command name's closing ")"
    const stat = readText(join(proc, entry.name, 'stat')) ?? '';
    const started = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
    out.set(`${entry.name}:${started}`, `pid ${entry.name}: ${argv.join(' ').slice(0, 300)}`);
  }
  return out;
}

/** This process's mount table (the machine's, unless the tests run in a namespace of their own). */
function mounts(proc: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of (readText(join(proc, 'self/mountinfo')) ?? '').split('\n')) {
    const [head, tail] = line.split(' - ');
    const mountPoint = head?.split(' ')[4];
    const [type, source] = tail?.split(' ') ?? [];
    if (mountPoint === undefined || type === undefined) continue;
    const description = `${mountPoint} (${type} from ${source ?? '?'})`;
    out.set(description, description);
  }
  return out;
}

function loopDevices(blockDir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of listDirectory(blockDir)) {
    if (!entry.name.startsWith('loop')) continue;
    const backing = readText(join(blockDir, entry.name, 'loop/backing_file'))?.trim();
    if (backing === undefined) continue;
    const description = `/dev/${entry.name} (${backing})`;
    out.set(description, description);
  }
  return out;
}

/** LXC's lock directories of the LXC paths under /tmp (a development host's: /run/lxc/lock/tmp/<dir>/...). */
function lxcLocks(lockDir: string): string[] {
  return listDirectory(join(lockDir, 'tmp')).map((e) => join(lockDir, 'tmp', e.name));
}

/**
 * The cgroups a development host's containers leave: its `opdbus-<hash>` prefix (in each hierarchy,
 * also below a process-grouping parent such as memory/process_api/<id>/), looked for three levels down.
 */
function hostCgroups(cgroupDir: string): string[] {
  const out: string[] = [];
  const find = (dir: string, depth: number): void => {
    for (const e of listDirectory(dir)) {
      if (!e.isDirectory()) continue;
      if (/^opdbus-[0-9a-f]{10}$/.test(e.name)) out.push(join(dir, e.name));
      else if (depth < 3 && !e.name.startsWith('lxc.')) find(join(dir, e.name), depth + 1);
    }
  };
  find(cgroupDir, 0);
  return out;
}
