import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SYSTEM_BUS_ADDRESS } from '../main/common/dbus/system-bus.js';
import { CLI, TestSandbox } from './support/sandbox.js';

// Without DBUS_SYSTEM_BUS_ADDRESS, the witness's check and `op-dbus audit witness [--forget]` must name
// the host by the same address, or --forget removes another file than the check keeps (issue 11,
// point 3). The CLI runs in a mount namespace where the sandbox's directory is bind-mounted on
// /run/dbus, so the system bus's own path leads to the sandbox, never to this machine's bus.
let sb: TestSandbox;
let state: string;

beforeAll(async () => {
  sb = await TestSandbox.start();
  state = mkdtempSync(join(tmpdir(), 'opdbus-witness-endpoint-'));
});
afterAll(async () => {
  await sb?.stop();
  rmSync(state, { recursive: true, force: true });
});

/** The CLI as a user runs it on a real host: no DBUS_SYSTEM_BUS_ADDRESS, the sandbox's bus at /run/dbus. */
function cliOnSystemBusPath(args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_STATE_HOME: state };
  delete env['DBUS_SYSTEM_BUS_ADDRESS'];
  delete env['OP_DBUS_WITNESS'];
  const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync(
    'unshare',
    ['-m', '--propagation', 'private', 'sh', '-c', `mount --bind ${sb.dir} /run/dbus && exec ${quoted}`],
    { env, encoding: 'utf8', timeout: 60_000 },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the witness without DBUS_SYSTEM_BUS_ADDRESS', () => {
  it('keeps its record under the system bus address, where `audit witness` and --forget look', () => {
    const query = cliOnSystemBusPath(['query', '--json']);
    expect(query.code, query.stderr).toBe(0);
    const witnessed = join(state, 'op-dbus', 'witness');
    expect(readdirSync(witnessed)).toHaveLength(1);

    const shown = cliOnSystemBusPath(['audit', 'witness', '--json']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ endpoint: SYSTEM_BUS_ADDRESS });

    const forgot = cliOnSystemBusPath(['audit', 'witness', '--forget', '--json']);
    expect(JSON.parse(forgot.stdout)).toEqual({ endpoint: SYSTEM_BUS_ADDRESS, forgotten: true });
    expect(readdirSync(witnessed)).toEqual([]);
  });
});
