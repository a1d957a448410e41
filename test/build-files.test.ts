import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUS_NAME, Manager1 } from '../main/common/contract/index.js';
import { ROOT } from './support/sandbox.js';

// The system integration files in build/, checked by the tools that consume them where they run here.
const file = (p: string): string => readFileSync(join(ROOT, p), 'utf8');

describe('build/systemd/op-dbus.service', () => {
  it('passes systemd-analyze verify, apart from the binary that is only there once installed', () => {
    const r = spawnSync('systemd-analyze', ['verify', join(ROOT, 'build/systemd/op-dbus.service')], {
      encoding: 'utf8',
    });
    const complaints = (r.stdout + r.stderr).split('\n').filter((l) => l.trim() !== '');
    expect(complaints.filter((l) => !/\/usr\/lib\/op-dbus\/op-dbus is not executable/.test(l))).toEqual([]);
  });

  it('is hardened: systemd-analyze security rates its exposure 3.0 or lower', () => {
    const r = spawnSync(
      'systemd-analyze',
      ['security', '--offline=yes', join(ROOT, 'build/systemd/op-dbus.service')],
      {
        encoding: 'utf8',
      },
    );
    const m = /Overall exposure level for op-dbus\.service: ([\d.]+)/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(Number(m?.[1])).toBeLessThanOrEqual(3.0);
    const unit = file('build/systemd/op-dbus.service');
    for (const line of [
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'StateDirectory=op-dbus',
      `BusName=${BUS_NAME}`,
    ]) {
      expect(unit).toContain(line);
    }
  });
});

describe('build/dbus', () => {
  it('the activation file names our bus name and hands the start to the systemd unit', () => {
    const act = file('build/dbus/org.opdbus.Manager1.service');
    expect(act).toMatch(new RegExp(`^Name=${BUS_NAME.replace(/\./g, '\\.')}$`, 'm'));
    expect(act).toMatch(/^SystemdService=op-dbus\.service$/m);
    expect(file('build/systemd/op-dbus.service')).toMatch(/^Alias=dbus-org\.opdbus\.Manager1\.service$/m);
  });
});

describe('build/polkit/org.opdbus.policy', () => {
  const policy = file('build/polkit/org.opdbus.policy');
  const defaults = (id: string): string[] => {
    const block =
      new RegExp(`<action id="${id.replace(/\./g, '\\.')}">[\\s\\S]*?</action>`).exec(policy)?.[0] ?? '';
    return ['allow_any', 'allow_inactive', 'allow_active'].map(
      (k) => new RegExp(`<${k}>([^<]+)</${k}>`).exec(block)?.[1] ?? 'missing',
    );
  };

  it('declares every action the core checks, plus core.start', () => {
    const actions = new Set(Object.values(Manager1).map((m) => `org.opdbus.${m.action}`));
    for (const a of [
      ...actions,
      'org.opdbus.rollback',
      'org.opdbus.manage-plugins',
      'org.opdbus.audit-admin',
      'org.opdbus.core.start',
    ]) {
      expect(defaults(a)).not.toContain('missing');
    }
  });

  it('has the defaults an admin expects', () => {
    expect(defaults('org.opdbus.read')[2]).toBe('yes');
    expect(defaults('org.opdbus.plan')[2]).toBe('yes');
    expect(defaults('org.opdbus.apply')[2]).toBe('auth_admin_keep');
    expect(defaults('org.opdbus.rollback')[2]).toBe('auth_admin_keep');
    expect(defaults('org.opdbus.audit-admin')).toEqual(['auth_admin', 'auth_admin', 'auth_admin']);
  });
});
