import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUS_NAME,
  INTERFACE_NAME,
  OBJECT_PATH,
  type ApplyProgress,
  type ErrorPayload,
  type Stats,
} from '../../main/common/contract/index.js';
import { callMethod, connectSystemBus, type MessageBus } from '../../main/common/dbus/calls.js';
import { CoreSignals } from '../../main/client/dbus/core-signals.js';
import { TestSandbox, waitFor, writeDocument } from '../support/sandbox.js';

// The core's signals on a real bus with the shipped policy (build/dbus/org.opdbus.Manager1.conf, which
// the sandbox's bus includes): nobody but the core can make a client believe an ApplyProgress or Metrics,
// and nobody who did not subscribe (polkit read) sees them.
let sb: TestSandbox;
let docs: string;
let bus: MessageBus;
let watch: CoreSignals;
const progress: ApplyProgress[] = [];
const metrics: Stats[] = [];

beforeAll(async () => {
  sb = await TestSandbox.start();
  docs = join(sb.dir, '..', 'docs');
  await sb.restartCore({ OP_DBUS_METRICS_INTERVAL_MS: '200' });
  bus = await connectSystemBus();
  const subscribe = (signals: string[]): Promise<unknown> =>
    callMethod(bus, {
      destination: BUS_NAME,
      path: OBJECT_PATH,
      interface: INTERFACE_NAME,
      member: 'Subscribe',
      signature: 's',
      body: [JSON.stringify({ signals })],
    });
  watch = await CoreSignals.watch(bus, subscribe);
  await watch.listen('ApplyProgress', (p) => progress.push(p));
  await watch.listen('Metrics', (s) => metrics.push(s));
});
afterAll(async () => {
  watch?.close();
  bus?.disconnect();
  await sb?.stop();
  if (sb !== undefined) rmSync(dirname(sb.dir), { recursive: true, force: true });
});

const forged: ApplyProgress = { planId: 'FORGED', plugin: null, step: 'done', message: 'FORGED \u001b[2J' };

/** dbus-send of a forged ApplyProgress to this test's connection, as `uid` (or root). */
function spoof(uid?: string): void {
  const argv = [
    'dbus-send',
    '--system',
    '--type=signal',
    // dbus-next's typings omit the unique name the connection holds
    `--dest=${(bus as unknown as { name: string }).name}`,
    OBJECT_PATH,
    `${INTERFACE_NAME}.ApplyProgress`,
    `string:${JSON.stringify(forged)}`,
  ];
  const [cmd, ...args] = uid === undefined ? argv : ['runuser', '-u', uid, '--', ...argv];
  spawnSync(cmd as string, args, { env: sb.childEnv, timeout: 10_000 });
}

describe("the core's signals", () => {
  it('a forged signal from another user is refused by the bus; from root (allowed to send) the client drops it', async () => {
    // what reaches this connection at all, before CoreSignals looks at it
    const arrived: string[] = [];
    const raw = (msg: { member?: string; body: unknown[] }): void => {
      if (msg.member === 'ApplyProgress' && String(msg.body[0]).includes('FORGED')) arrived.push('forged');
    };
    bus.on('message', raw);
    spoof('nobody');
    await new Promise((r) => setTimeout(r, 300));
    expect(arrived).toEqual([]); // the bus refused it
    spoof();
    await waitFor('the forged signal from root', () => arrived.length === 1);
    bus.removeListener('message', raw);
    // the real thing, for comparison: an apply's progress from the core
    const file = writeDocument(
      docs,
      'd.json',
      JSON.stringify({ version: 1, plugins: { hostname: { location: 'Signals' } } }),
    );
    expect(sb.cli(['apply', file, '--yes']).code).toBe(0);
    await waitFor('the apply progress', () => progress.some((p) => p.step === 'done'));
    expect(progress.filter((p) => p.planId === 'FORGED')).toEqual([]);
    expect(progress.every((p) => p.planId.length > 0)).toBe(true);
  });

  it('are unicast to subscribers: a bus user who did not subscribe sees no Metrics or ApplyProgress', async () => {
    // nobody may not even read (polkit: no active session), so it cannot subscribe; it only listens
    const eavesdrop = spawn(
      'runuser',
      ['-u', 'nobody', '--', 'dbus-monitor', '--system', `type='signal',interface='${INTERFACE_NAME}'`],
      { env: sb.childEnv, stdio: 'pipe' },
    );
    let seen = '';
    eavesdrop.stdout.on('data', (d: Buffer) => (seen += d.toString('utf8')));
    await new Promise((r) => setTimeout(r, 500));
    const before = metrics.length;
    const file = writeDocument(
      docs,
      'e.json',
      JSON.stringify({ version: 1, plugins: { hostname: { location: 'Unseen' } } }),
    );
    expect(sb.cli(['apply', file, '--yes']).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    const exited = new Promise((r) => eavesdrop.once('exit', r));
    eavesdrop.kill('SIGTERM');
    await exited;
    // the subscriber had them all the while
    expect(metrics.length).toBeGreaterThan(before + 2);
    expect(seen).not.toMatch(/member=(Metrics|ApplyProgress)/);
    expect(seen).not.toMatch(/Unseen/);
  });

  it('Subscribe asks polkit for read: a uid without it is refused, and that is audited', () => {
    const r = sb.cli(['stats', '--watch', '--json'], { uid: 'nobody' });
    expect(r.code).toBe(1);
    expect((JSON.parse(r.stdout) as { error: ErrorPayload }).error).toMatchObject({
      code: 'NotAuthorized',
      message: expect.stringMatching(/org\.opdbus\.read/) as unknown,
    });
    const denied = JSON.parse(sb.cli(['audit', 'list', '--kind', 'auth-denied', '--json']).stdout) as {
      entries: { summary: string }[];
    };
    expect(denied.entries.some((e) => /Subscribe/.test(e.summary))).toBe(true);
  });

  it('after the core restarts, the client follows the new owner and subscribes again', async () => {
    await sb.restartCore({ OP_DBUS_METRICS_INTERVAL_MS: '200' });
    const after = metrics.length;
    await waitFor('Metrics from the new core', () => metrics.length > after + 1);
    expect(metrics[metrics.length - 1]?.core.pid).toBe(sb.corePid());
  });

  it('text from the core reaches the terminal with its control characters escaped', () => {
    // a key the schema refuses comes back in the error's JSON pointer, as the document wrote it
    const file = writeDocument(
      docs,
      'esc.json',
      '{"version":1,"plugins":{"hostname":{"\\u001b]0;owned\\u0007":1}}}',
    );
    const r = sb.cli(['plan', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/[\u0007\u001b]/);
    expect(r.stderr).toContain('\\x1b]0;owned\\x07');
  });
});
