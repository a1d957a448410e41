import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirLock } from './data-dir-lock.js';

describe('DataDirLock', () => {
  it('refuses a second core while the first holds the lock, and frees it on release', () => {
    const dir = mkdtempSync(join(tmpdir(), 'opdbus-lock-'));
    const first = DataDirLock.acquire(dir);
    // a live process other than us holds it: pretend the lock is PID 1's
    writeFileSync(join(dir, 'core.lock'), '1\n');
    expect(() => DataDirLock.acquire(dir)).toThrow(/another core \(pid 1\)/);
    first.release();
    expect(existsSync(join(dir, 'core.lock'))).toBe(false);
    DataDirLock.acquire(dir).release();
  });

  it('takes over a lock whose core was killed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'opdbus-lock-'));
    const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim(); // this PID has exited
    writeFileSync(join(dir, 'core.lock'), `${dead}\n`);
    const lock = DataDirLock.acquire(dir);
    expect(readFileSync(join(dir, 'core.lock'), 'utf8').trim()).toBe(String(process.pid));
    lock.release();
  });
});
