import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoopFilesystem, loopFilesystemSupport } from '../../main/service/storage/loop-filesystem.js';
import { TestSandbox, writeDocument } from '../support/sandbox.js';
import { errorOf, LxcReader, lxcDoc, TEMPLATE } from './lxc-support.js';

// The rootfs size of a container where the storage can bound it: the development host's LXC path
// bind-mounted from a loop BTRFS (quotas enabled by the test, as an admin would), the core restarted
// so that its mount namespace sees it. Every change is read back with btrfs-progs (`btrfs subvolume
// show`, `btrfs qgroup show -re --raw`) and LXC's own tools, never through the plugin.

const support = loopFilesystemSupport('btrfs');
const GIB = 1024 ** 3;

let sb: TestSandbox;
let lxc: LxcReader;
let loop: LoopFilesystem | undefined;
let bound = false;
let docs: string;

const btrfs = (...args: string[]): string => execFileSync('btrfs', args, { encoding: 'utf8' });

/** The qgroup rows of the loop filesystem by subvolume path: max referenced bytes (null: none). */
function limits(): Map<string, number | null> {
  const out = btrfs('qgroup', 'show', '-re', '--raw', (loop as LoopFilesystem).mountPoint);
  const rows = new Map<string, number | null>();
  for (const line of out.split('\n').slice(2)) {
    const [id, , , maxRfer, , path] = line.trim().split(/\s+/);
    if (id === undefined || path === undefined || maxRfer === undefined) continue;
    rows.set(path, maxRfer === 'none' ? null : Number(maxRfer));
  }
  return rows;
}

function apply(name: string, containers: unknown[], ...flags: string[]): void {
  const r = sb.cli(['apply', writeDocument(docs, name, lxcDoc({ containers })), '--yes', ...flags]);
  expect(r.code, r.stderr).toBe(0);
}

const ct = (rootfs: string, state = 'running') => ({
  id: '200',
  properties: { template: TEMPLATE, hostname: 'sized', memory: 128, rootfs, state },
});

beforeAll(async () => {
  if (!support.ok) return;
  sb = await TestSandbox.start({ prefix: 'opdbus-rootfs2-' });
  lxc = new LxcReader(sb);
  docs = join(sb.dir, '..', 'docs');
  loop = LoopFilesystem.create('btrfs', 400);
  btrfs('quota', 'enable', loop.mountPoint);
  // the LXC path itself moves onto the BTRFS; the core's private mount namespace is made at its start
  execFileSync('mount', ['--bind', loop.mountPoint, lxc.path]);
  bound = true;
  await sb.restartCore();
}, 120_000);

afterAll(async () => {
  if (sb !== undefined && bound) {
    for (const id of Object.keys(lxc.ls())) {
      try {
        lxc.exec('lxc-stop', '-P', lxc.path, '-n', id, '-k');
      } catch {
        // stopped already
      }
    }
    execFileSync('umount', [lxc.path]);
  }
  // the core's namespace keeps its copy of the mount until sb.stop ends the core; the loop device
  // (detached here, autoclear) goes with it
  loop?.close();
  await sb?.stop();
}, 120_000);

describe.skipIf(!support.ok)('lxc rootfs size on a BTRFS LXC path', () => {
  it('creates the rootfs as a subvolume bounded by a 1 GiB qgroup limit, and the container runs', () => {
    apply('create.json', [ct('1')]);
    const rootfs = join(lxc.path, '200', 'rootfs');
    const show = btrfs('subvolume', 'show', rootfs);
    expect(show).toMatch(/Subvolume ID:\s+\d+/);
    expect(show).toMatch(/Limit referenced:\s+1\.00GiB/);
    expect(limits().get('200/rootfs')).toBe(GIB);
    expect(lxc.ls()['200']?.state).toBe('RUNNING');
    expect(lxc.attach('200', 'cat', '/etc/hostname')).toBe('sized');
    // a re-plan from the same document: nothing to do
    const r = sb.cli([
      'plan',
      writeDocument(docs, 'create.json', lxcDoc({ containers: [ct('1')] })),
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/"action":\s*"(create|modify|delete)"/);
  });

  it('changes the limit when the size changes (a reversible modify)', () => {
    apply('grow.json', [ct('local:2')]);
    expect(limits().get('200/rootfs')).toBe(2 * GIB);
    expect(lxc.ls()['200']?.state).toBe('RUNNING');
  });

  it('names a limit lost out of band in drift, and the next apply sets it again', () => {
    const rootfs = join(lxc.path, '200', 'rootfs');
    btrfs('qgroup', 'limit', 'none', rootfs);
    expect(limits().get('200/rootfs')).toBeNull();
    const d = sb.cli(['drift', '--json']);
    expect(d.code).toBe(2);
    expect(JSON.parse(d.stdout)).toMatchObject({
      drift: [{ path: '/plugins/lxc/containers/0/properties/rootfs', expected: 'local:2' }],
    });
    apply('grow.json', [ct('local:2')]);
    expect(limits().get('200/rootfs')).toBe(2 * GIB);
  });

  it('destroys the subvolume with the container (confirmed)', () => {
    apply('destroy.json', [{ id: '200', properties: { state: 'absent' } }], '--confirm-irreversible');
    expect(existsSync(join(lxc.path, '200'))).toBe(false);
    const list = btrfs('subvolume', 'list', (loop as LoopFilesystem).mountPoint);
    expect(list).not.toMatch(/200\/rootfs/);
    // and its qgroup with it (btrfs subvolume delete alone leaves a <stale> one)
    expect([...limits().keys()]).toEqual(['<toplevel>']);
    expect(lxc.ls()['200']).toBeUndefined();
  });

  it('refuses a size at plan time when the filesystem has quotas off, naming it', () => {
    btrfs('quota', 'disable', (loop as LoopFilesystem).mountPoint);
    const r = sb.cli([
      'plan',
      writeDocument(
        docs,
        'off.json',
        lxcDoc({
          containers: [
            { id: '201', properties: { template: TEMPLATE } },
            { ...ct('1'), id: '202' },
          ],
        }),
      ),
      '--json',
    ]);
    expect(r.code).toBe(1);
    const problems =
      (errorOf(r.stdout) as { details?: { problems: { pointer: string; message: string; line: number }[] } })
        .details?.problems ?? [];
    expect(problems.map((p) => p.pointer)).toEqual(['/plugins/lxc/containers/1/properties/rootfs']);
    expect(problems[0]?.line).toBeGreaterThan(0);
    expect(problems[0]?.message).toMatch(
      new RegExp(
        `^container 202: rootfs 1 GiB cannot be bounded: quotas are not enabled on the BTRFS filesystem ${(loop as LoopFilesystem).device} mounted at ${lxc.path} `,
      ),
    );
    // and nothing turned them on behind the admin's back
    expect(() => btrfs('qgroup', 'show', (loop as LoopFilesystem).mountPoint)).toThrow();
  });
});
