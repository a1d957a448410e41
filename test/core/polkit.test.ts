import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorPayload } from '../../main/common/contract/index.js';
import { polkitRulesDir } from '../../main/devhost/host.js';
import { TestSandbox, waitFor, writeDocument } from '../support/sandbox.js';

// Real polkitd on the sandbox bus, real non-root uids (root is always authorised by polkit, so the
// clients run as `nobody` and `daemon` through runuser). polkitd reads the sandbox's own rules dir.
let sb: TestSandbox;
let docs: string;
let rules: string;
const uid = (user: string): number =>
  Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim());

function writeRules(applyAllowedFor: string[]): void {
  writeFileSync(
    join(rules, '50-opdbus-test.rules'),
    `// test rules: read and plan for both test users; apply only for ${applyAllowedFor.join(', ')}
polkit.addRule(function (action, subject) {
  var testUser = subject.user == "nobody" || subject.user == "daemon";
  if (!testUser || action.id.indexOf("org.opdbus.") != 0) return polkit.Result.NOT_HANDLED;
  if (action.id == "org.opdbus.read" || action.id == "org.opdbus.plan") return polkit.Result.YES;
  if (action.id == "org.opdbus.apply") return ${JSON.stringify(applyAllowedFor)}.indexOf(subject.user) >= 0 ? polkit.Result.YES : polkit.Result.NO;
  return polkit.Result.NO;
});
`,
  );
}

beforeAll(async () => {
  sb = await TestSandbox.start();
  docs = join(sb.dir, '..', 'docs');
  rules = polkitRulesDir(sb.dir);
  writeRules(['nobody']);
  // polkitd reloads rules on change; wait until it answers with them
  await waitFor('polkitd to load the test rules', () => sb.cli(['query'], { uid: 'daemon' }).code === 0);
});
afterAll(async () => {
  await sb?.stop();
});

const doc = (location: string): string => JSON.stringify({ version: 1, plugins: { hostname: { location } } });

interface AuditRow {
  kind: string;
  actor: { uid: number; action?: string };
  summary: string;
}
const audit = (): AuditRow[] =>
  (JSON.parse(sb.cli(['audit', 'list', '--json']).stdout) as { entries: AuditRow[] }).entries;

describe('polkit on every call', () => {
  it("polkitd loaded our actions with the policy's defaults", () => {
    const r = spawnSync('pkaction', ['--action-id', 'org.opdbus.apply', '--verbose'], {
      env: sb.childEnv,
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/implicit active:\s+auth_admin_keep/);
    expect(r.stdout).toMatch(/implicit any:\s+auth_admin/);
  });

  it('the allowed uid applies a change that an independent reader sees; the audit names uid and action', () => {
    const r = sb.cli(['apply', writeDocument(docs, 'nobody.json', doc('Set by nobody')), '--yes'], {
      uid: 'nobody',
    });
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(sb.machineInfo()['LOCATION']).toBe('Set by nobody');
    const apply = audit().find((e) => e.kind === 'apply');
    expect(apply?.actor).toMatchObject({ uid: uid('nobody'), action: 'org.opdbus.apply' });
    expect(audit().find((e) => e.kind === 'plan')?.actor).toMatchObject({
      uid: uid('nobody'),
      action: 'org.opdbus.plan',
    });
  });

  it("the denied uid's apply changes nothing and is audited as auth-denied", () => {
    const r = sb.cli(['apply', writeDocument(docs, 'daemon.json', doc('Set by daemon')), '--yes', '--json'], {
      uid: 'daemon',
    });
    expect(r.code).toBe(1);
    const error = (JSON.parse(r.stdout) as { error: ErrorPayload }).error;
    expect(error.code).toBe('NotAuthorized');
    expect(error.message).toMatch(/^not authorised: org\.opdbus\.apply/);
    expect(sb.machineInfo()['LOCATION']).toBe('Set by nobody');
    expect(sb.hostnameProperty('Location')).toBe('Set by nobody');
    const denied = audit().find((e) => e.kind === 'auth-denied');
    expect(denied?.actor).toMatchObject({ uid: uid('daemon'), action: 'org.opdbus.apply' });
    expect(denied?.summary).toMatch(/denied Approve/);
  });

  it("a denied uid's repeated calls cost one audit entry, not one each (any bus user can be refused)", () => {
    const deniedBefore = audit().filter((e) => e.kind === 'auth-denied').length;
    const call = `busctl --system call org.opdbus.Manager1 /org/opdbus/Manager1 org.opdbus.Manager1 Cancel s '{"planId":"x"}'`;
    const r = spawnSync(
      'runuser',
      ['-u', 'daemon', '--', 'sh', '-c', `for i in $(seq 50); do ${call} 2>&1; done`],
      {
        env: sb.childEnv,
        encoding: 'utf8',
      },
    );
    expect(r.stdout.match(/NotAuthorized/g)?.length).toBe(50);
    const denied = audit().filter((e) => e.kind === 'auth-denied');
    expect(denied.length - deniedBefore).toBe(1);
    expect(denied[0]?.summary).toMatch(/^denied Cancel: /);
  });

  it('read is allowed to both', () => {
    for (const user of ['nobody', 'daemon']) {
      const r = sb.cli(['query', '--json'], { uid: user });
      expect(r.code).toBe(0);
      expect(JSON.stringify(JSON.parse(r.stdout))).toContain('Set by nobody');
    }
  });

  it('a user no rule mentions, outside a session, is told authentication is required, and nothing changes', () => {
    const r = sb.cli(['query', '--json'], { uid: 'bin' });
    expect(r.code).toBe(1);
    const error = (JSON.parse(r.stdout) as { error: ErrorPayload }).error;
    expect(error.message).toMatch(/not authorised: org\.opdbus\.read \(authentication is required/);
    const apply = sb.cli(['apply', writeDocument(docs, 'bin.json', doc('Set by bin')), '--yes'], {
      uid: 'bin',
    });
    expect(apply.code).toBe(1);
    expect(apply.stderr).toMatch(
      /NotAuthorized: not authorised: org\.opdbus\.plan \(authentication is required/,
    );
    expect(sb.machineInfo()['LOCATION']).toBe('Set by nobody');
  });

  it('passes interactive authorisation through to polkit only when the client allows it', async () => {
    // watch the core's CheckAuthorization calls on the bus: flags 1 = AllowUserInteraction
    const monitor = spawn(
      'dbus-monitor',
      [
        '--system',
        "type='method_call',interface='org.freedesktop.PolicyKit1.Authority',member='CheckAuthorization'",
      ],
      { env: sb.childEnv },
    );
    let seen = '';
    monitor.stdout.on('data', (d: Buffer) => (seen += d.toString()));
    await new Promise((r) => setTimeout(r, 300));
    const client = await sb.client();
    try {
      await client.call('Schema', {}, { interactive: true });
      await client.call('Schema', {});
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      client.close();
      monitor.kill();
    }
    const flags = [...seen.matchAll(/string "org\.opdbus\.read"[\s\S]*?uint32 (\d+)/g)].map((m) =>
      Number(m[1]),
    );
    expect(flags).toEqual([1, 0]);
  });

  it('a rule change takes effect without restarting anything', async () => {
    const core = sb.corePid();
    writeRules(['nobody', 'daemon']);
    const file = writeDocument(docs, 'daemon2.json', doc('Set by daemon'));
    await waitFor(
      'the new rule to apply',
      () => sb.cli(['apply', file, '--yes'], { uid: 'daemon' }).code === 0,
    );
    expect(sb.machineInfo()['LOCATION']).toBe('Set by daemon');
    expect(sb.corePid()).toBe(core);
  });
});
