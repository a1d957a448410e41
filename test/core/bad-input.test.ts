import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { OpError, type ErrorPayload } from '../../main/common/contract/index.js';
import { callMethod, connectBus } from '../../main/common/dbus/calls.js';
import { MAX_REQUEST_CHARS } from '../../main/service/core/service.js';
import { TestSandbox, writeDocument } from '../support/sandbox.js';

// Bad input gets a clear error naming what and where, and changes nothing.
let sb: TestSandbox;
let docs: string;

beforeAll(async () => {
  sb = await TestSandbox.start();
  docs = join(sb.dir, '..', 'docs');
});
afterAll(async () => {
  await sb?.stop();
});

function jsonError(args: string[]): { code: number | null; error: ErrorPayload; stderr: string } {
  const r = sb.cli([...args, '--json']);
  return { code: r.code, error: (JSON.parse(r.stdout) as { error: ErrorPayload }).error, stderr: r.stderr };
}

describe('bad desired-state documents', () => {
  it('invalid JSONC names file, line and column', () => {
    const file = writeDocument(
      docs,
      'broken.jsonc',
      '{\n  "version": 1,\n  "plugins": {\n    "hostname": { "location" "x" }\n  }\n}\n',
    );
    const r = jsonError(['plan', file]);
    expect(r.code).toBe(1);
    expect(r.error.code).toBe('ParseError');
    expect(r.error.where).toMatchObject({ file, line: 4, column: 30 });
    expect(r.stderr).toContain(`${file}:4:30`);
    expect(r.stderr).toMatch(/colon expected/);
  });

  it('an unknown plugin is named with its pointer and line', () => {
    const file = writeDocument(
      docs,
      'unknown.json',
      '{\n  "version": 1,\n  "plugins": {\n    "hostnme": {}\n  }\n}\n',
    );
    const r = jsonError(['plan', file]);
    expect(r.error.code).toBe('UnknownPlugin');
    expect(r.error.message).toMatch(/"hostnme".*known: hostname/);
    expect(r.error.where).toMatchObject({
      file,
      pointer: '/plugins/hostnme',
      line: 4,
      column: 5,
      plugin: 'hostnme',
    });
  });

  it('a wrong type names the JSON pointer, line and column', () => {
    const file = writeDocument(
      docs,
      'type.json',
      '{\n  "version": 1,\n  "plugins": {\n    "hostname": {\n      "location": 42\n    }\n  }\n}\n',
    );
    const r = jsonError(['plan', file]);
    expect(r.error.code).toBe('SchemaError');
    expect(r.error.where).toMatchObject({
      file,
      pointer: '/plugins/hostname/location',
      line: 5,
      column: 7,
      plugin: 'hostname',
    });
    expect(r.error.message).toMatch(/string/);
  });

  it('an unknown key and a wrong version are named', () => {
    const extra = writeDocument(docs, 'extra.json', '{"version":1,"plugins":{"hostname":{"colour":"red"}}}');
    expect(jsonError(['plan', extra]).error.where?.pointer).toBe('/plugins/hostname/colour');
    const version = writeDocument(docs, 'version.json', '{"version":2,"plugins":{}}');
    const r = jsonError(['plan', version]);
    expect(r.error.code).toBe('SchemaError');
    expect(r.error.where?.pointer).toBe('/version');
  });

  it('an invalid hostname is refused before anything is applied', () => {
    const file = writeDocument(
      docs,
      'bad-host.json',
      '{"version":1,"plugins":{"hostname":{"static_hostname":"-bad_name-"}}}',
    );
    const r = jsonError(['apply', file, '--yes']);
    expect(r.error.code).toBe('SchemaError');
    expect(r.error.where?.pointer).toBe('/plugins/hostname/static_hostname');
  });

  it('a missing file is named', () => {
    const r = jsonError(['plan', join(docs, 'nope.json')]);
    expect(r.error).toMatchObject({ code: 'InvalidArgument', where: { file: join(docs, 'nope.json') } });
    expect(r.error.message).toMatch(/no such file/);
  });
});

describe('refused requests', () => {
  it('a malformed request over D-Bus is refused with the pointer of the bad field', async () => {
    const client = await sb.client();
    try {
      const err = await client
        .call('Approve', { planId: 'x', hash: 'not-a-hash' })
        .catch((e: unknown) => e as OpError);
      expect(err).toBeInstanceOf(OpError);
      expect((err as OpError).code).toBe('InvalidArgument');
      expect((err as OpError).where?.pointer).toBe('/hash');
    } finally {
      client.close();
    }
  });

  it('a request body past the limit is refused before it is parsed', async () => {
    const bus = await connectBus(sb.env.DBUS_SYSTEM_BUS_ADDRESS);
    try {
      const huge = JSON.stringify({ document: ' '.repeat(MAX_REQUEST_CHARS) });
      const err = await callMethod(bus, {
        destination: 'org.opdbus.Manager1',
        path: '/org/opdbus/Manager1',
        interface: 'org.opdbus.Manager1',
        member: 'Plan',
        signature: 's',
        body: [huge],
      }).catch((e: unknown) => e as OpError);
      expect(err).toBeInstanceOf(OpError);
      expect((err as OpError).message).toMatch(/larger than the 9437184 a request may be/);
    } finally {
      bus.disconnect();
    }
  });

  it('a stale plan is refused: the host changed between plan and apply', async () => {
    const client = await sb.client();
    try {
      const doc = JSON.stringify({ version: 1, plugins: { hostname: { location: 'Stale Test' } } });
      const plan = await client.call('Plan', { document: doc });
      await client.call('Approve', { planId: plan.id, hash: plan.hash });
      sb.setHostnameOutOfBand('SetLocation', 'Changed behind our back');
      const err = await client
        .call('Apply', { planId: plan.id, hash: plan.hash })
        .catch((e: unknown) => e as OpError);
      expect((err as OpError).code).toBe('StalePlan');
      expect((err as OpError).message).toMatch(/hostname/);
      expect(sb.hostnameProperty('Location')).toBe('Changed behind our back');
      // applying an unapproved plan, or another hash, is refused too
      const fresh = await client.call('Plan', { document: doc });
      expect(
        (
          (await client
            .call('Apply', { planId: fresh.id, hash: fresh.hash })
            .catch((e: unknown) => e)) as OpError
        ).code,
      ).toBe('NotApproved');
      const other = 'f'.repeat(64);
      expect(
        (
          (await client
            .call('Approve', { planId: fresh.id, hash: other })
            .catch((e: unknown) => e)) as OpError
        ).code,
      ).toBe('HashMismatch');
    } finally {
      client.close();
    }
  });

  it('the CLI refuses a reviewed plan hash that no longer matches', () => {
    const file = writeDocument(
      docs,
      'reviewed.json',
      JSON.stringify({ version: 1, plugins: { hostname: { location: 'Reviewed' } } }),
    );
    const plan = JSON.parse(sb.cli(['plan', file, '--json']).stdout) as { hash: string };
    sb.setHostnameOutOfBand('SetLocation', 'Someone else');
    const r = jsonError(['apply', file, '--plan-hash', plan.hash]);
    expect(r.code).toBe(1);
    expect(r.error.code).toBe('StalePlan');
    expect(sb.hostnameProperty('Location')).toBe('Someone else');
  });

  it('a non-root caller without a polkit rule is refused (no session: auth_admin) and the refusal is audited', () => {
    const r = sb.cli(['query', '--json'], { uid: 'nobody' });
    expect(r.code).toBe(1);
    const error = (JSON.parse(r.stdout) as { error: ErrorPayload }).error;
    expect(error.code).toBe('NotAuthorized');
    expect(error.message).toMatch(/not authorised: org\.opdbus\.read/);
    const nobodyUid = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim());
    const list = JSON.parse(sb.cli(['audit', 'list', '--kind', 'auth-denied', '--json']).stdout) as {
      entries: { actor: { uid: number; action: string } }[];
    };
    expect(list.entries[0]?.actor).toMatchObject({ uid: nobodyUid, action: 'org.opdbus.read' });
  });
});

describe('an absent D-Bus service', () => {
  it('names the service and the method that failed, and plans nothing', async () => {
    // take away the sandbox's activation file: the bus falls back to the distribution's, which
    // needs systemd and fails; then stop the running hostnamed
    rmSync(join(sb.dir, 'services/org.freedesktop.hostname1.service'));
    sb.busctl(
      'call',
      'org.freedesktop.DBus',
      '/org/freedesktop/DBus',
      'org.freedesktop.DBus',
      'ReloadConfig',
    );
    spawnSync('sh', [
      '-c',
      `for p in $(pgrep -x systemd-hostnam); do grep -qs "upperdir=${sb.dir}/etc-upper" /proc/$p/mountinfo && kill $p; done; sleep 0.3`,
    ]);
    const file = writeDocument(
      docs,
      'absent.json',
      JSON.stringify({ version: 1, plugins: { hostname: { location: 'x' } } }),
    );
    const r = jsonError(['plan', file]);
    expect(r.code).toBe(1);
    expect(['DBusCallFailed', 'PluginUnavailable']).toContain(r.error.code);
    expect(r.stderr).toContain('org.freedesktop.hostname1');
    if (r.error.code === 'DBusCallFailed') {
      expect(r.error.where?.dbus).toMatchObject({ service: 'org.freedesktop.hostname1', member: 'GetAll' });
    }
  });

  it('with no core on the bus, the CLI says so and how to start one', async () => {
    const pid = sb.corePid();
    process.kill(pid as number, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    const r = jsonError(['query']);
    expect(r.error.code).toBe('DBusCallFailed');
    expect(r.error.message).toMatch(/org\.opdbus\.Manager1\) is not running.*sandbox up/);
  });
});
