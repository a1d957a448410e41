import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI } from './support/sandbox.js';

// What the CLI prints never acts on the admin's terminal: a file name, a message or a value with ESC,
// BEL, CR, C1 or bidi controls arrives as visible escapes. These errors come before any core is asked.
const TERMINAL_ACTIVE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent/bus', OP_DBUS_WITNESS: 'off' },
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the CLI on a terminal', () => {
  it('writes control characters of an error (here: the file name) as escapes', () => {
    const r = cli(['apply', '/nonexistent/\u001b]0;owned\u0007\u001b[2J\rok.json']);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(TERMINAL_ACTIVE);
    expect(r.stderr).toContain('/nonexistent/\\x1b]0;owned\\x07\\x1b[2J ok.json');
  });

  it('--json: the error object is the same JSON value, with C1 and bidi controls escaped', () => {
    const file = '/nonexistent/\u009b31m\u202eevil.json';
    const r = cli(['apply', file, '--json']);
    expect(r.code).toBe(1);
    expect(r.stdout).not.toMatch(TERMINAL_ACTIVE);
    expect(r.stdout).toContain('\\u009b31m\\u202eevil');
    expect((JSON.parse(r.stdout) as { error: { where: { file: string } } }).error.where.file).toBe(file);
  });

  it('usage errors (commander) too', () => {
    const r = cli(['plan', 'a.json', '--\u001b[31mred']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).not.toMatch(TERMINAL_ACTIVE);
    expect(r.stderr).toContain('\\x1b[31mred');
  });
});
