import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { witnessDir, WitnessStore, type WitnessRecord } from '../common/witness/store.js';
import { sandboxUp, sandboxWipe } from './host.js';

// The development host across down and up, with the real core and the CLI as separate processes
// (dist/, so `npm run build` first): down keeps the core's signing key and audit log, up resumes
// them and the CLI's witness sees the same host; a real key change still raises the alarm; down
// --wipe removes the host and its witness record. The witness state lives in this test's temp dir.

const CLI = resolve(import.meta.dirname, '../../dist/main/op-dbus.js');

let root = '';
let dir = '';
let state = '';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A shell with only PATH and this test's witness state, as an admin's would run the CLI. */
function sh(script: string): Run {
  const r = spawnSync('sh', ['-c', script], {
    env: { PATH: process.env['PATH'], XDG_STATE_HOME: state, OP: `${process.execPath} ${CLI}`, D: dir },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `eval "$(op-dbus sandbox up)"`, then a command that runs the witness, then the core's own checkpoint. */
function upAndCheckpoint(): Run {
  return sh(
    'eval "$($OP sandbox up --dir "$D")" && $OP query --json >/dev/null && $OP audit checkpoint --json',
  );
}

function checkpointOf(r: Run): { verifierKey: string; size: number; root: string } {
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as { verifierKey: string; size: number; root: string };
}

/** The witness's records as files on disk (read without the witness's code). */
function witnessRecords(): WitnessRecord[] {
  const d = join(state, 'op-dbus', 'witness');
  if (!existsSync(d)) return [];
  return readdirSync(d).map((f) => JSON.parse(readFileSync(join(d, f), 'utf8')) as WitnessRecord);
}

const keyFile = (): string => join(dir, 'data', 'keys', 'audit-checkpoint.key');
const endpoint = (): string => `unix:path=${dir}/system_bus_socket`;

/** Processes that mention the host directory in their command line or environment. */
function hostProcesses(): string[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid)
    .filter((n) => {
      try {
        return (
          readFileSync(`/proc/${n}/cmdline`, 'utf8').includes(dir) ||
          readFileSync(`/proc/${n}/environ`, 'utf8').includes(dir) ||
          readFileSync(`/proc/${n}/mountinfo`, 'utf8').includes(dir)
        );
      } catch {
        return false;
      }
    });
}

describe('the development host across down and up (real core, CLI witness)', () => {
  let first: { verifierKey: string; size: number; root: string };
  let firstKey: Buffer;

  beforeAll(() => {
    root = mkdtempSync('/tmp/op-dbus-resume-test-');
    chmodSync(root, 0o755);
    dir = join(root, 'sb');
    state = join(root, 'state');
  });

  afterAll(async () => {
    try {
      await sandboxWipe(dir);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 60_000);

  it('down keeps the key and the log; up resumes them, and the witness sees the same host', () => {
    first = checkpointOf(upAndCheckpoint());
    firstKey = readFileSync(keyFile());
    expect(witnessRecords()).toMatchObject([{ endpoint: endpoint(), verifierKey: first.verifierKey }]);
    const pidBefore = readFileSync(join(dir, 'core.pid'), 'utf8');

    expect(sh('$OP sandbox down --dir "$D"')).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(readdirSync(dir).sort()).toEqual([
      '.op-dbus-sandbox',
      'data',
      'data-plugin-state',
      'keys',
      'ovs',
      'systemd-etc',
    ]);
    expect(hostProcesses()).toEqual([]);

    const again = checkpointOf(upAndCheckpoint());
    expect(again.verifierKey).toBe(first.verifierKey);
    expect(again.size).toBeGreaterThanOrEqual(first.size);
    expect(readFileSync(keyFile())).toEqual(firstKey);
    expect(readFileSync(join(dir, 'core.pid'), 'utf8')).not.toBe(pidBefore);
    // the witness demanded a consistency proof from the old size to the new one, and kept the new head
    expect(witnessRecords()).toMatchObject([{ endpoint: endpoint(), verifierKey: first.verifierKey }]);
    const seen = witnessRecords()[0]?.size ?? -1;
    expect(seen).toBeGreaterThanOrEqual(first.size);
    expect(sh('$OP sandbox status --dir "$D" >/dev/null').code).toBe(0);
  }, 60_000);

  it('a failed up on a host that went down keeps its data', async () => {
    expect(sh('$OP sandbox down --dir "$D"').code).toBe(0);
    await expect(
      sandboxUp({ dir, coreCommand: [process.execPath, '-e', 'process.exit(5)'] }),
    ).rejects.toThrow('exit code 5');
    expect(readdirSync(dir).sort()).toEqual([
      '.op-dbus-sandbox',
      'data',
      'data-plugin-state',
      'keys',
      'ovs',
      'systemd-etc',
    ]);
    expect(readFileSync(keyFile())).toEqual(firstKey);
    expect(hostProcesses()).toEqual([]);
  }, 60_000);

  it('a real key change on the host still raises the alarm', () => {
    rmSync(keyFile());
    const r = upAndCheckpoint();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`AUDIT LOG TAMPERING on ${endpoint()}`);
    expect(witnessRecords()).toMatchObject([{ endpoint: endpoint(), verifierKey: first.verifierKey }]);
  }, 60_000);

  it('down --wipe removes the host and the witness forgets it (and only it); a new host is no alarm', () => {
    const other = new WitnessStore(witnessDir({ XDG_STATE_HOME: state }));
    const elsewhere = { ...(witnessRecords()[0] as WitnessRecord), endpoint: 'unix:path=/run/elsewhere' };
    other.put(elsewhere);

    expect(sh('$OP sandbox down --wipe --dir "$D"')).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(existsSync(dir)).toBe(false);
    expect(hostProcesses()).toEqual([]);
    expect(witnessRecords()).toEqual([elsewhere]);

    const fresh = checkpointOf(upAndCheckpoint());
    expect(fresh.verifierKey).not.toBe(first.verifierKey);
    expect(
      witnessRecords()
        .map((r) => [r.endpoint, r.verifierKey])
        .sort(),
    ).toEqual(
      [
        [endpoint(), fresh.verifierKey],
        ['unix:path=/run/elsewhere', elsewhere.verifierKey],
      ].sort(),
    );
    expect(sh('$OP sandbox down --wipe --dir "$D"').code).toBe(0);
    expect(existsSync(dir)).toBe(false);
    expect(hostProcesses()).toEqual([]);
  }, 60_000);
});
