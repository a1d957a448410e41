import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorPayload } from '../../main/common/contract/index.js';
import type { TestSandbox } from '../support/sandbox.js';

// Independent readers of a development host's LXC: LXC's own tools run in the host's namespaces
// (`op-dbus sandbox exec -- lxc-*`, as a person would), the kernel's /proc and the cgroup files.

export const TEMPLATE = 'local:vztmpl/busybox-rootfs_amd64.tar.zst';

export class LxcReader {
  constructor(private readonly sb: TestSandbox) {}

  get path(): string {
    const p = this.sb.env['OP_DBUS_LXC_PATH'];
    if (p === undefined) throw new Error('the development host exports no OP_DBUS_LXC_PATH');
    return p;
  }

  /** A command in the host's namespaces; throws with its stderr when it fails. */
  exec(...argv: string[]): string {
    const r = this.sb.cli(['sandbox', 'exec', '--dir', this.sb.dir, '--', ...argv]);
    if (r.code !== 0) throw new Error(`${argv.join(' ')}: exit ${String(r.code)}: ${r.stderr}`);
    return r.stdout;
  }

  /** `lxc-ls -f`: each container's state, autostart and IPv4 addresses. */
  ls(): Record<string, { state: string; autostart: string; ipv4: string; unprivileged: string }> {
    const out = this.exec('lxc-ls', '-P', this.path, '-f', '-F', 'NAME,STATE,AUTOSTART,IPV4,UNPRIVILEGED');
    const rows: ReturnType<LxcReader['ls']> = {};
    for (const line of out.trim().split('\n').slice(1)) {
      const [name, state, autostart, ipv4, unprivileged] = line.trim().split(/\s+/);
      if (name !== undefined && state !== undefined)
        rows[name] = {
          state,
          autostart: autostart ?? '',
          ipv4: ipv4 ?? '',
          unprivileged: unprivileged ?? '',
        };
    }
    return rows;
  }

  /**
   * lxc.start.auto as LXC's config file says (lxc-ls and lxc-autostart show a running container's
   * loaded config, so an onboot change shows there only from its next start).
   */
  autostartInConfig(id: string): string | undefined {
    const text = readFileSync(join(this.path, id, 'config'), 'utf8');
    return [...text.matchAll(/^lxc\.start\.auto\s*=\s*(\S+)/gm)].at(-1)?.[1];
  }

  attach(id: string, ...argv: string[]): string {
    return this.exec('lxc-attach', '-P', this.path, '-n', id, '--', ...argv).trim();
  }

  /** Whether a few pings from inside the container to target get an answer (`lxc-attach -- ping`). */
  pings(id: string, target: string, count = 3): boolean {
    const r = this.sb.cli([
      'sandbox',
      'exec',
      '--dir',
      this.sb.dir,
      '--',
      'lxc-attach',
      '-P',
      this.path,
      '-n',
      id,
      '--',
      'ping',
      '-c',
      String(count),
      '-W',
      '1',
      '-q',
      target,
    ]);
    return r.code === 0;
  }

  initPid(id: string): number {
    return Number(this.exec('lxc-info', '-P', this.path, '-n', id, '-p', '-H').trim());
  }

  /** The memory limit in the cgroup LXC put the container's init in (v1's memory controller or v2's). */
  memoryLimit(id: string): number {
    const lines = readFileSync(`/proc/${this.initPid(id)}/cgroup`, 'utf8').split('\n');
    const v1 = lines.find((l) => /^\d+:memory:/.test(l));
    if (v1 !== undefined)
      return Number(
        readFileSync(`/sys/fs/cgroup/memory${v1.split(':')[2] ?? ''}/memory.limit_in_bytes`, 'utf8'),
      );
    const v2 = lines.find((l) => l.startsWith('0::'));
    return Number(readFileSync(`/sys/fs/cgroup${(v2 ?? '0::').slice(3)}/memory.max`, 'utf8'));
  }

  /** The host uid the container's init (root inside) runs as. */
  hostUidOfRoot(id: string): number {
    const status = readFileSync(`/proc/${this.initPid(id)}/status`, 'utf8');
    return Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
  }
}

export const errorOf = (stdout: string): ErrorPayload =>
  (JSON.parse(stdout) as { error: ErrorPayload }).error;

export interface Entry {
  seq: number;
  kind: string;
  summary: string;
}

export function auditEntries(sb: TestSandbox, ...args: string[]): Entry[] {
  const r = sb.cli(['audit', 'list', '--limit', '200', ...args, '--json']);
  return (JSON.parse(r.stdout) as { entries: Entry[] }).entries;
}

/** A desired-state document with only the lxc section. */
export function lxcDoc(section: Record<string, unknown>): string {
  return JSON.stringify({ version: 1, plugins: { lxc: section } }, null, 2);
}
