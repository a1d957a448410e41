import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { parse } from 'smol-toml';
import type { ErrorPayload, Plan } from '../../main/common/contract/index.js';
import { unitObjectPath } from '../../main/devhost/systemd1/standin.js';
import { ROOT, TestSandbox, writeDocument } from '../support/sandbox.js';

// The systemd plugin against the development host's systemd1 STAND-IN (main/devhost/systemd1/), not
// systemd: this machine has no systemd as PID 1 and must never run one. The stand-in's Introspect is
// checked against systemd 252's real introspection XML first, so the plugin is tested against
// systemd's interface; the host is read back with busctl and the unit directory on disk.

const FIXTURES = join(ROOT, '..', 'shared', 'fixtures');
const XML = join(FIXTURES, 'dbus-introspection', 'systemd');
const EXAMPLES = join(FIXTURES, 'original-examples');
const MANAGER = 'org.freedesktop.systemd1.Manager';
const UNIT = 'org.freedesktop.systemd1.Unit';

let sb: TestSandbox;
let docs: string;
let unitDir: string;
const doc = (plugins: Record<string, unknown>): string => JSON.stringify({ version: 1, plugins });
const errorOf = (stdout: string): ErrorPayload => (JSON.parse(stdout) as { error: ErrorPayload }).error;
const unitProp = (unit: string, prop: string): string =>
  sb.busctl('get-property', 'org.freedesktop.systemd1', unitObjectPath(unit), UNIT, prop);

/** name → signature (in-args + "→" + out-args for methods, type for properties, args for signals) of one interface. */
function members(xml: string, iface: string): Map<string, string> {
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '',
    isArray: (_name, _path, _leaf, isAttribute) => !isAttribute,
  });
  const tree = parser.parse(xml) as { node: { interface?: Record<string, unknown>[] }[] };
  const out = new Map<string, string>();
  const args = (m: Record<string, unknown>, dir: string | undefined): string =>
    ((m['arg'] ?? []) as Record<string, string>[])
      .filter((a) => dir === undefined || (a['direction'] ?? 'in') === dir)
      .map((a) => a['type'])
      .join('');
  for (const i of tree.node[0]?.interface ?? []) {
    if (i['name'] !== iface) continue;
    for (const m of (i['method'] ?? []) as Record<string, unknown>[])
      out.set(`method ${String(m['name'])}`, `${args(m, 'in')}→${args(m, 'out')}`);
    for (const s of (i['signal'] ?? []) as Record<string, unknown>[])
      out.set(`signal ${String(s['name'])}`, args(s, undefined));
    for (const p of (i['property'] ?? []) as Record<string, string>[])
      out.set(`property ${p['name']}`, p['type'] ?? '');
  }
  return out;
}

beforeAll(async () => {
  sb = await TestSandbox.start({ prefix: 'opdbus-units' });
  docs = join(sb.dir, '..', 'docs');
  unitDir = sb.env['OP_DBUS_SYSTEMD_UNIT_DIR'] ?? '';
});
afterAll(async () => {
  await sb?.stop();
});

describe('the systemd1 stand-in (not systemd) against systemd 252 introspection XML', () => {
  it('serves every member the plugin uses with its real signature', () => {
    const manifest = parse(readFileSync(join(ROOT, 'plugins/systemd/plugin.toml'), 'utf8')) as {
      permissions: { dbus: { interface: string; methods?: string[]; signals?: string[] }[] };
    };
    const used = manifest.permissions.dbus.find((p) => p.interface === MANAGER);
    const realManager = members(readFileSync(join(XML, `${MANAGER}.xml`), 'utf8'), MANAGER);
    const realUnit = members(readFileSync(join(XML, 'org.freedesktop.systemd1.Service.xml'), 'utf8'), UNIT);
    const served = (path: string, iface: string): Map<string, string> =>
      members(sb.busctl('introspect', '--xml-interface', 'org.freedesktop.systemd1', path), iface);
    const manager = served('/org/freedesktop/systemd1', MANAGER);
    const unit = served(unitObjectPath('openvswitch-switch.service'), UNIT);
    const wanted = [
      ...(used?.methods ?? []).map((m) => `method ${m}`),
      ...(used?.signals ?? []).map((s) => `signal ${s}`),
    ];
    expect(wanted.length).toBeGreaterThan(10);
    for (const m of wanted) {
      expect(realManager.get(m), `${m} in the real XML`).toBeDefined();
      expect(manager.get(m), `${m} served by the stand-in`).toBe(realManager.get(m));
    }
    for (const p of ['ActiveState', 'UnitFileState', 'LoadState', 'DropInPaths', 'FragmentPath']) {
      expect(realUnit.get(`property ${p}`)).toBeDefined();
      expect(unit.get(`property ${p}`), p).toBe(realUnit.get(`property ${p}`));
    }
  });
});

describe('the systemd plugin on the systemd1 stand-in (not systemd)', () => {
  it('plans the systemd sections of the original example files unchanged', () => {
    for (const example of ['example-state.json', 'example-multi-container-state.json']) {
      const original = JSON.parse(readFileSync(join(EXAMPLES, example), 'utf8')) as {
        plugins: { systemd: unknown };
      };
      const file = writeDocument(docs, example, doc({ systemd: original.plugins.systemd }));
      const r = sb.cli(['plan', file, '--json']);
      expect(r.code, r.stderr + r.stdout).toBe(2); // 2: changes to make
      const plan = JSON.parse(r.stdout) as Plan;
      const diff = plan.diffs.find((d) => d.plugin === 'systemd');
      // openvswitch-switch.service is this machine's Debian unit file, as on a real host with the package
      expect(diff?.resources).toEqual([
        expect.objectContaining({ id: 'openvswitch-switch.service', action: 'modify' }),
      ]);
    }
  });

  it('refuses at plan time a unit the host does not have, naming it', () => {
    const file = writeDocument(
      docs,
      'missing.json',
      doc({ systemd: { units: { 'no-such-thing.service': { active_state: 'active' } } } }),
    );
    const r = sb.cli(['plan', file, '--json']);
    expect(r.code).toBe(1);
    expect(errorOf(r.stdout)).toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringContaining('no-such-thing.service does not exist') as unknown,
      where: { plugin: 'systemd', pointer: '/plugins/systemd/units/no-such-thing.service' },
    });
  });

  it('writes a unit file and a drop-in, reloads, enables and starts it; busctl sees it; a re-plan has no changes', () => {
    const units = {
      'opdbus-web.service': {
        file: '[Unit]\nDescription=op-dbus test web\n\n[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n',
        dropins: { '10-limits.conf': '[Service]\nLimitNOFILE=65536\n' },
        enabled: true,
        active_state: 'active',
      },
    };
    const file = writeDocument(docs, 'web.json', doc({ systemd: { units } }));
    const r = sb.cli(['apply', file, '--yes', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(unitProp('opdbus-web.service', 'ActiveState')).toBe('s "active"');
    expect(unitProp('opdbus-web.service', 'UnitFileState')).toBe('s "enabled"');
    expect(unitProp('opdbus-web.service', 'DropInPaths')).toContain(
      join(unitDir, 'opdbus-web.service.d', '10-limits.conf'),
    );
    expect(readlinkSync(join(unitDir, 'multi-user.target.wants', 'opdbus-web.service'))).toBe(
      join(unitDir, 'opdbus-web.service'),
    );
    const again = sb.cli(['plan', file, '--json']);
    expect((JSON.parse(again.stdout) as Plan).hasChanges).toBe(false);
  });

  it('masks and unmasks a unit', () => {
    const mask = writeDocument(
      docs,
      'mask.json',
      doc({
        systemd: { units: { 'openvswitch-switch.service': { masked: true, active_state: 'inactive' } } },
      }),
    );
    expect(sb.cli(['apply', mask, '--yes', '--json']).code).toBe(0);
    expect(unitProp('openvswitch-switch.service', 'UnitFileState')).toBe('s "masked"');
    expect(readlinkSync(join(unitDir, 'openvswitch-switch.service'))).toBe('/dev/null');
    const unmask = writeDocument(
      docs,
      'unmask.json',
      doc({ systemd: { units: { 'openvswitch-switch.service': { masked: false } } } }),
    );
    expect(sb.cli(['apply', unmask, '--yes', '--json']).code).toBe(0);
    expect(unitProp('openvswitch-switch.service', 'UnitFileState')).not.toBe('s "masked"');
    expect(() => lstatSync(join(unitDir, 'openvswitch-switch.service'))).toThrow();
  });

  it('a start job the stand-in fails fails the apply, which rolls back systemd and the hostname plugin before it', () => {
    const before = sb.hostnameProperty('PrettyHostname');
    sb.busctl(
      'call',
      'org.freedesktop.systemd1',
      '/org/freedesktop/systemd1',
      'org.opdbus.Systemd1StandIn',
      'FailNextJob',
      'ss',
      'openvswitch-switch.service',
      'failed',
    );
    const file = writeDocument(
      docs,
      'fail.json',
      doc({
        hostname: { pretty_hostname: 'units rollback test' },
        systemd: { units: { 'openvswitch-switch.service': { enabled: true, active_state: 'active' } } },
      }),
    );
    const enabledBefore = unitProp('openvswitch-switch.service', 'UnitFileState');
    const r = sb.cli(['apply', file, '--yes', '--json']);
    expect(r.code).toBe(1);
    expect(errorOf(r.stdout)).toMatchObject({ code: 'ApplyFailed' });
    expect(errorOf(r.stdout).message).toMatch(/start job of openvswitch-switch.service ended "failed"/);
    // both plugins are back where they were: the job's failed state reset, enablement undone, hostname restored
    expect(sb.hostnameProperty('PrettyHostname')).toBe(before);
    expect(unitProp('openvswitch-switch.service', 'ActiveState')).toBe('s "inactive"');
    expect(unitProp('openvswitch-switch.service', 'UnitFileState')).toBe(enabledBefore);
  });
});
