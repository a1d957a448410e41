import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { OpError } from '../../common/contract/index.js';
import type { HostComponent, HostPaths } from '../component.js';
import { run } from '../run.js';

// The host's network: one network namespace that stands for the machine's own network. The core
// runs in it (so the plugins' netlink, OVS and LXC calls see the host's interfaces, not this
// machine's), ovs-vswitchd runs in it, and LXC starts its containers from it. LXC's command sockets
// are abstract, so bound to this namespace: `op-dbus sandbox exec -- lxc-ls ...` runs there too.

/** The namespace's name under /run/netns: one per host directory, so two hosts never share one. */
export function netnsName(paths: HostPaths): string {
  return `opdbus-${createHash('sha256').update(paths.dir).digest('hex').slice(0, 10)}`;
}

/** Where the cgroup tree is bound before /sys is remounted for the namespace (see hostNamespaceCommand). */
const cgroupBind = (p: HostPaths): string => join(p.dir, 'cgroup-bind');

/**
 * argv run in the host's namespaces, exactly as its components and core run: its network namespace,
 * a private mount namespace with a fresh sysfs for that network (what `ip netns exec` does) and the
 * machine's cgroup tree bound back into it (without it LXC loses its cgroups silently).
 */
export function hostNamespaceCommand(paths: HostPaths, argv: readonly string[]): string[] {
  // "$0", "$1" and "$@" carry every path and argument: nothing of argv is ever part of a shell string.
  const inner = 'mount -t sysfs sysfs /sys && mount --rbind "$0" /sys/fs/cgroup && exec "$@"';
  const outer = `b="$0"; n="$1"; shift; mount --rbind /sys/fs/cgroup "$b" && exec nsenter --net="$n" sh -c '${inner}' "$b" "$@"`;
  const ns = `/run/netns/${netnsName(paths)}`;
  return ['unshare', '-m', '--propagation', 'private', 'sh', '-c', outer, cgroupBind(paths), ns, ...argv];
}

export const netns: HostComponent = {
  name: 'netns',
  files: ['cgroup-bind'],
  keeps: [],

  env: (paths) => ({ OP_DBUS_NETNS: netnsName(paths) }),

  async start(ctx) {
    const name = netnsName(ctx.paths);
    mkdirSync(cgroupBind(ctx.paths), { recursive: true });
    if (!existsSync(`/run/netns/${name}`)) await run('ip', ['netns', 'add', name]);
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  },

  // a namespace has no process of its own; what runs in it belongs to the components that started it
  processes: () => [],

  async stop(paths) {
    const name = netnsName(paths);
    if (!existsSync(`/run/netns/${name}`)) return;
    const left = pidsInNetns(name);
    if (left.length > 0) {
      throw new OpError(
        'Internal',
        `network namespace ${name} still has processes ${left.join(', ')}; not deleting it`,
      );
    }
    await run('ip', ['netns', 'delete', name]);
  },

  async status(ctx) {
    const name = netnsName(ctx.paths);
    const there = existsSync(`/run/netns/${name}`);
    return {
      pid: null,
      healthy: there,
      detail: there ? `network namespace ${name}` : `network namespace ${name} is missing`,
    };
  },
};

/** The processes whose network namespace is the named one (compared by the namespace's inode). */
export function pidsInNetns(name: string): number[] {
  let target: string;
  try {
    target = netnsInode(`/run/netns/${name}`);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) === target) pids.push(Number(entry));
    } catch {
      // gone, or a kernel thread
    }
  }
  return pids;
}

/** /run/netns/NAME is a bind mount of an nsfs inode: its inode number is the namespace's. */
function netnsInode(file: string): string {
  return `net:[${statSync(file).ino}]`;
}
