import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import dbus from 'dbus-next';
import {
  BUS_NAME,
  CONTRACT_VERSION,
  CONTRACT_VERSION_ANNOTATION,
  introspectionXml,
  OBJECT_PATH,
  type ErrorPayload,
} from '../main/common/contract/index.js';
import { connectBus, type MessageBus } from '../main/common/dbus/calls.js';
import { CLI } from './support/sandbox.js';

// What the CLI says when it cannot talk to a core of its own version (issue 11, point 4): an empty
// DBUS_SYSTEM_BUS_ADDRESS, no bus at all, a bus without a core, and a core of another contract version
// are four different sentences, each naming what is wrong and what to do. The bus is a bare
// dbus-daemon of the test's own; the "core of another version" is this test process, which owns the
// core's name and answers only Introspect.
const execFileAsync = promisify(execFile);
let dir: string;
let address: string;
let busPid: number;
let fakeCore: MessageBus | undefined;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'opdbus-connect-'));
  address = `unix:path=${dir}/bus`;
  writeFileSync(
    join(dir, 'bus.conf'),
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>${address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`,
  );
  const out = execFileSync('dbus-daemon', [`--config-file=${dir}/bus.conf`, '--fork', '--print-pid=1'], {
    encoding: 'utf8',
  });
  busPid = Number(out.trim());
});
afterAll(() => {
  fakeCore?.disconnect();
  if (busPid > 0) process.kill(busPid, 'SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

/** The CLI's error for `query --json` with this DBUS_SYSTEM_BUS_ADDRESS (a child process, so the fake core here can answer). */
async function queryError(busAddress: string): Promise<{ error: ErrorPayload; stderr: string }> {
  const env = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: busAddress, XDG_STATE_HOME: join(dir, 'state') };
  const r = await execFileAsync(process.execPath, [CLI, 'query', '--json'], { env }).then(
    () => undefined,
    (e: { code: number; stdout: string; stderr: string }) => e,
  );
  expect(r?.code).toBe(1);
  return { error: (JSON.parse(r?.stdout ?? '') as { error: ErrorPayload }).error, stderr: r?.stderr ?? '' };
}

/** Owns the core's name on the test bus and answers Introspect with `xml`; nothing else. */
async function startFakeCore(xml: string): Promise<void> {
  fakeCore?.disconnect();
  fakeCore = await connectBus(address);
  const bus = fakeCore;
  await bus.requestName(BUS_NAME, dbus.NameFlag.DO_NOT_QUEUE);
  bus.addMethodHandler((msg: dbus.Message) => {
    if (msg.path !== OBJECT_PATH || msg.member !== 'Introspect') return false;
    bus.send(dbus.Message.newMethodReturn(msg, 's', [xml]));
    return true;
  });
}

describe('connecting to the core', () => {
  it('DBUS_SYSTEM_BUS_ADDRESS set but empty: names the variable and what it should hold', async () => {
    const { error } = await queryError('');
    expect(error.code).toBe('InvalidArgument');
    expect(error.message).toMatch(
      /^DBUS_SYSTEM_BUS_ADDRESS is set but empty: unset it to use the system bus \(unix:path=\/run\/dbus\/system_bus_socket\), or set it to a D-Bus address/,
    );
    expect(error.message).not.toMatch(/DISPLAY/);
  });

  it('no bus at the address: says no bus answers there, and how to start or name one', async () => {
    const absent = `unix:path=${dir}/no-bus-here`;
    const { error } = await queryError(absent);
    expect(error.code).toBe('DBusCallFailed');
    expect(error.message).toMatch(
      new RegExp(
        `^no D-Bus bus answers at ${absent} \\(.*ENOENT.*\\): start the system bus, or point DBUS_SYSTEM_BUS_ADDRESS`,
      ),
    );
  });

  it('a bus without a core: says the core is not running on that bus, and how to start one', async () => {
    const { error } = await queryError(address);
    expect(error.code).toBe('DBusCallFailed');
    expect(error.message).toMatch(
      new RegExp(
        `^the operation-dbus core \\(org\\.opdbus\\.Manager1\\) is not running on the bus at ${address}: start it .*sandbox up`,
      ),
    );
  });

  it('a core of another contract version: names both versions and what to run instead', async () => {
    await startFakeCore(
      introspectionXml().replace(
        `name="${CONTRACT_VERSION_ANNOTATION}" value="${CONTRACT_VERSION}"`,
        `name="${CONTRACT_VERSION_ANNOTATION}" value="${CONTRACT_VERSION + 1}"`,
      ),
    );
    const { error } = await queryError(address);
    expect(error.code).toBe('DBusCallFailed');
    expect(error.message).toBe(
      `the core on ${address} speaks contract version ${CONTRACT_VERSION + 1}, this op-dbus speaks version ${CONTRACT_VERSION}: use the op-dbus client of the core's build, or restart the core from this one`,
    );
  });

  it('a core from before the version marker: says it declares no version', async () => {
    await startFakeCore('<node><interface name="org.opdbus.Manager1"/></node>');
    const { error } = await queryError(address);
    expect(error.message).toMatch(
      new RegExp(
        `^the core on ${address} declares no contract version \\(it is older than the version marker\\), this op-dbus speaks version ${CONTRACT_VERSION}:`,
      ),
    );
  });
});
