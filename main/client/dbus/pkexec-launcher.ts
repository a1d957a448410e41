import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpError } from '../../common/contract/index.js';

/** The program the polkit action org.opdbus.core.start names (its exec.path annotation). */
export const CORE_LAUNCHER = '/usr/lib/op-dbus/op-dbus-core';

/**
 * Where the core is not installed as a service: start it through pkexec (polkit action
 * org.opdbus.core.start) on a private bus for this user, and return that bus's address. The core
 * stops when this process exits.
 */
export async function startCoreWithPkexec(launcher = CORE_LAUNCHER, timeoutMs = 120_000): Promise<string> {
  const base = process.env['XDG_RUNTIME_DIR'] ?? tmpdir();
  const dir = join(base, `op-dbus-${process.getuid?.() ?? 'user'}-${randomBytes(6).toString('hex')}`);
  const child = spawn('pkexec', [launcher, dir], { stdio: ['inherit', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let exit: number | null | undefined;
  child.on('exit', (code) => (exit = code));
  child.on('error', (e) => {
    stderr += e.message;
    exit = -1;
  });
  child.unref();
  const until = Date.now() + timeoutMs;
  const addressFile = join(dir, 'address');
  while (!existsSync(addressFile)) {
    if (exit !== undefined) {
      // pkexec: 126 = the person dismissed the prompt, 127 = not authorised or no agent to ask
      const why =
        exit === 127 || exit === 126
          ? 'not authorised to start the core (polkit action org.opdbus.core.start)'
          : `the core exited (${String(exit)}): ${coreLogTail(dir)}`;
      throw new OpError(
        'NotAuthorized',
        `pkexec ${launcher}: ${why}${stderr.trim() ? `: ${stderr.trim()}` : ''}`,
      );
    }
    if (Date.now() > until) {
      child.kill();
      throw new OpError('Internal', `pkexec ${launcher}: no private bus after ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // pkexec has said what it had to; the core itself logs beside its bus
  child.stderr.destroy();
  return readFileSync(addressFile, 'utf8').trim();
}

function coreLogTail(dir: string): string {
  try {
    return readFileSync(join(dir, 'core.log'), 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return 'no log';
  }
}
