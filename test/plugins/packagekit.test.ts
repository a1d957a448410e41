import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorPayload, Plan } from '../../main/common/contract/index.js';
import { TestSandbox, waitFor, writeDocument } from '../support/sandbox.js';

// The packagekit plugin against a real packagekitd (Debian's, apt backend) on the development host's
// bus, chrooted into an overlay of / (main/devhost/components/packagekit.ts) serving a local
// repository of .debs the host built. Read back with dpkg-query on that root's dpkg database, never
// our plugin; this machine's own dpkg database must be byte-for-byte unchanged.

let sb: TestSandbox;
let docs: string;
let admindir: string;
const doc = (packages: Record<string, unknown>): string =>
  JSON.stringify({ version: 1, plugins: { packagekit: { packages } } });
const errorOf = (stdout: string): ErrorPayload => (JSON.parse(stdout) as { error: ErrorPayload }).error;
const hostDpkg = (): string =>
  createHash('sha256').update(readFileSync('/var/lib/dpkg/status')).digest('hex');
/** dpkg-query's own answer: name → version of the installed packages among names. */
function installed(...names: string[]): Record<string, string> {
  const r = spawnSync(
    'dpkg-query',
    ['--admindir', admindir, '-W', '-f', '${Package} ${Version} ${Status}\\n', ...names],
    {
      encoding: 'utf8',
    },
  );
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const [name, version, , , state] = line.split(' ');
    if (name !== undefined && version !== undefined && state === 'installed') out[name] = version;
  }
  return out;
}

beforeAll(async () => {
  sb = await TestSandbox.start({ prefix: 'opdbus-units' });
  docs = join(sb.dir, '..', 'docs');
  admindir = join(sb.env['OP_DBUS_PKG_ROOT'] ?? '/nonexistent', 'var', 'lib', 'dpkg');
});
afterAll(async () => {
  await sb?.stop();
});

describe('the packagekit plugin on a real packagekitd in its own root', () => {
  const before = hostDpkg();

  it('installs a package (and its dependency) that dpkg-query then sees; a re-plan has no changes', () => {
    expect(installed('opdbus-tools', 'opdbus-hello')).toEqual({});
    const file = writeDocument(docs, 'install.json', doc({ 'opdbus-tools': { ensure: 'installed' } }));
    const r = sb.cli(['apply', file, '--yes', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(installed('opdbus-tools', 'opdbus-hello')).toEqual({
      'opdbus-tools': '2.1.0',
      'opdbus-hello': '1.0.0',
    });
    const again = sb.cli(['plan', file, '--json']);
    expect(again.code).toBe(0);
    expect((JSON.parse(again.stdout) as Plan).hasChanges).toBe(false);
  });

  it('refuses at plan time a package no source has, naming it', () => {
    const file = writeDocument(
      docs,
      'missing.json',
      doc({
        'opdbus-nonesuch': { ensure: 'installed' },
        'opdbus-extra': { ensure: 'installed', version: '9.9' },
      }),
    );
    const r = sb.cli(['plan', file, '--json']);
    expect(r.code).toBe(1);
    const e = errorOf(r.stdout);
    expect(e).toMatchObject({ code: 'InvalidArgument', where: { plugin: 'packagekit' } });
    expect(e.message).toMatch(/package opdbus-nonesuch is not available/);
    expect(e.message).toMatch(/package opdbus-extra version 9\.9 is not available/);
  });

  it('refuses a removal without confirmation, removes with it; dpkg-query agrees; a re-plan has no changes', () => {
    const file = writeDocument(
      docs,
      'remove.json',
      doc({ 'opdbus-tools': { ensure: 'removed' }, 'opdbus-extra': { ensure: 'installed' } }),
    );
    const plan = JSON.parse(sb.cli(['plan', file, '--json']).stdout) as Plan;
    expect(plan.irreversible).toEqual(['packagekit/opdbus-tools']);
    const refused = sb.cli(['apply', file, '--yes', '--json']);
    expect(refused.code).toBe(1);
    expect(errorOf(refused.stdout)).toMatchObject({ code: 'NotConfirmed' });
    expect(installed('opdbus-tools', 'opdbus-extra')).toEqual({ 'opdbus-tools': '2.1.0' });
    const ok = sb.cli(['apply', file, '--yes', '--confirm-irreversible', '--json']);
    expect(ok.code, ok.stderr + ok.stdout).toBe(0);
    expect(installed('opdbus-tools', 'opdbus-extra', 'opdbus-hello')).toEqual({
      'opdbus-extra': '0.3.0',
      'opdbus-hello': '1.0.0',
    });
    expect((JSON.parse(sb.cli(['plan', file, '--json']).stdout) as Plan).hasChanges).toBe(false);
  });

  it("never touched this machine's own dpkg database", () => {
    expect(hostDpkg()).toBe(before);
  });

  it('without PackageKit, reports installed packages from dpkg and says why apply is unavailable', async () => {
    const services = join(sb.dir, 'services', 'org.freedesktop.PackageKit.service');
    const original = readFileSync(services, 'utf8');
    const root = sb.env['OP_DBUS_PKG_ROOT'] ?? '';
    const ours = (): number[] =>
      readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .map(Number)
        .filter((pid) => {
          try {
            return readlinkSync(`/proc/${pid}/root`) === root;
          } catch {
            return false;
          }
        });
    // PackageKit that cannot start: its activation file runs /bin/false, and the running one is stopped
    writeFileSync(services, original.replace(/^Exec=.*$/m, 'Exec=/bin/false'));
    sb.busctl(
      'call',
      'org.freedesktop.DBus',
      '/org/freedesktop/DBus',
      'org.freedesktop.DBus',
      'ReloadConfig',
    );
    for (const pid of ours()) process.kill(pid, 'SIGTERM');
    try {
      await waitFor('packagekitd to exit', () => ours().length === 0);
      const q = sb.cli(['query', 'packagekit', '--json']);
      expect(q.code, q.stderr).toBe(0);
      expect(q.stdout).toContain('"opdbus-extra"');
      const file = writeDocument(docs, 'fallback.json', doc({ 'opdbus-tools': { ensure: 'installed' } }));
      const r = sb.cli(['plan', file, '--json']);
      expect(r.code).toBe(1);
      expect(errorOf(r.stdout)).toMatchObject({ code: 'PluginUnavailable' });
      expect(errorOf(r.stdout).message).toMatch(
        /apply is unavailable: org\.freedesktop\.PackageKit does not answer .*read \(from dpkg's database/,
      );
    } finally {
      writeFileSync(services, original);
      sb.busctl(
        'call',
        'org.freedesktop.DBus',
        '/org/freedesktop/DBus',
        'org.freedesktop.DBus',
        'ReloadConfig',
      );
    }
  });
});
