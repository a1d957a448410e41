import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { sandboxExecCommand } from '../../main/devhost/host.js';
import type { TestSandbox } from './sandbox.js';

// Tools against the development host's network and Open vSwitch, as a person runs them: the
// independent readers of the net and openflow tests (ovs-vsctl, ovs-ofctl, ip), and the network
// namespaces that stand for machines attached to the host's bridges by veth pairs.

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs argv in the host's namespaces (`op-dbus sandbox exec`), with OVS_RUNDIR and the rest set. */
export function inHost(sb: TestSandbox, ...argv: string[]): Run {
  const { argv: full, env } = sandboxExecCommand(sb.dir, argv);
  const [cmd, ...args] = full as [string, ...string[]];
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Like inHost, but throws with the tool's stderr when it fails; returns stdout. */
export function host(sb: TestSandbox, ...argv: string[]): string {
  const r = inHost(sb, ...argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: exit ${String(r.code)}: ${r.stderr}`);
  return r.stdout;
}

export function ip(...args: string[]): Run {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function must(r: Run, what: string): string {
  if (r.code !== 0) throw new Error(`${what}: ${r.stderr}`);
  return r.stdout;
}

/** A network namespace standing for one machine, attached to the host's netns by a veth pair. */
export class Peer {
  readonly ns: string;
  private constructor(
    readonly hostEnd: string,
    readonly address: string,
    ns: string,
  ) {
    this.ns = ns;
  }

  /** Creates netns opdbus-net-<random>, a veth whose hostEnd is in the host's netns (up), address on the peer's eth0. */
  static create(hostNetns: string, hostEnd: string, address: string): Peer {
    const ns = `opdbus-net-${randomBytes(4).toString('hex')}`;
    must(ip('netns', 'add', ns), `netns add ${ns}`);
    const p = new Peer(hostEnd, address, ns);
    must(
      ip('link', 'add', hostEnd, 'netns', hostNetns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns),
      'veth',
    );
    must(ip('-n', hostNetns, 'link', 'set', hostEnd, 'up'), 'host end up');
    must(ip('-n', ns, 'link', 'set', 'lo', 'up'), 'lo up');
    must(ip('-n', ns, 'address', 'add', address, 'dev', 'eth0'), 'address');
    must(ip('-n', ns, 'link', 'set', 'eth0', 'up'), 'eth0 up');
    return p;
  }

  /** Whether a few pings to target get an answer. */
  pings(target: string, count = 3): boolean {
    const r = spawnSync(
      'ip',
      ['netns', 'exec', this.ns, 'ping', '-c', String(count), '-i', '0.2', '-W', '1', '-q', target],
      {
        encoding: 'utf8',
        timeout: 20_000,
      },
    );
    return r.status === 0;
  }

  /** Deletes the namespace (its veth goes with it). */
  remove(): void {
    ip('netns', 'delete', this.ns);
  }
}

/** Our flows and everyone's, as `ovs-ofctl -O OpenFlow14 dump-flows --no-stats` prints them. */
export function dumpFlows(sb: TestSandbox, bridge: string, filter?: string): string[] {
  return host(
    sb,
    'ovs-ofctl',
    '-O',
    'OpenFlow14',
    '--no-names',
    'dump-flows',
    '--no-stats',
    bridge,
    ...(filter ? [filter] : []),
  )
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.includes('actions='));
}

/** `ovs-vsctl get TABLE RECORD COLUMN`, trimmed. */
export function vsctlGet(sb: TestSandbox, table: string, record: string, column: string): string {
  return host(sb, 'ovs-vsctl', 'get', table, record, column).trim();
}

/** A desired-state document of the given sections. */
export const documentOf = (plugins: Record<string, unknown>): string =>
  JSON.stringify({ version: 1, plugins });
