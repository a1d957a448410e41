import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TestSandbox } from './support/sandbox.js';

// The tests' own sandbox helper: whatever the caller's environment says, the witness state of the
// clients a test runs is the test's own, and stop leaves nothing of the sandbox in /tmp.
const callers = mkdtempSync(join(tmpdir(), 'opdbus-caller-state-'));
const saved = process.env['XDG_STATE_HOME'];

afterAll(() => {
  if (saved === undefined) delete process.env['XDG_STATE_HOME'];
  else process.env['XDG_STATE_HOME'] = saved;
  rmSync(callers, { recursive: true, force: true });
});

describe('TestSandbox', () => {
  it("keeps the CLI's witness state in its own temp dir over the caller's, and stop removes it all", async () => {
    process.env['XDG_STATE_HOME'] = callers;
    delete process.env['OP_DBUS_WITNESS'];
    const sb = await TestSandbox.start();
    const parent = dirname(sb.dir);
    try {
      const r = sb.cli(['query', '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(readdirSync(join(sb.stateDir, 'op-dbus', 'witness'))).toHaveLength(1);
      expect(readdirSync(callers)).toEqual([]);
    } finally {
      await sb.stop();
    }
    expect(existsSync(parent)).toBe(false);
  }, 60_000);
});
