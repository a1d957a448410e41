import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirLock } from './data-dir-lock.js';

const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'opdbus-lock-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('DataDirLock', () => {
  it('refuses a second core while the first holds the lock, and frees it on release', () => {
    const dir = tempDir();
    const first = DataDirLock.acquire(dir);
    // a live process other than us holds it: pretend the lock is PID 1's
    writeFileSync(join(dir, 'core.lock'), '1\n');
    expect(() => DataDirLock.acquire(dir)).toThrow(/another core \(pid 1\)/);
    first.release();
    expect(existsSync(join(dir, 'core.lock'))).toBe(false);
    DataDirLock.acquire(dir).release();
  });

  it('takes over a lock whose core was killed', () => {
    const dir = tempDir();
    const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim(); // this PID has exited
    writeFileSync(join(dir, 'core.lock'), `${dead}\n`);
    const lock = DataDirLock.acquire(dir);
    expect(readFileSync(join(dir, 'core.lock'), 'utf8').trim()).toBe(String(process.pid));
    lock.release();
  });
});
