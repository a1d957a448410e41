import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { OpError } from '../../common/contract/index.js';

/**
 * One core per data directory: a lock file holding the owner's PID, created exclusively. A lock
 * left by a core that was killed (its PID no longer runs) is taken over, which is exactly the case
 * where start-up recovery has work to do.
 */
export class DataDirLock {
  private constructor(private readonly file: string) {}

  /** Waits up to waitMs for a live owner to let go (a core that is stopping), then gives up. */
  static async acquireWaiting(dataDir: string, waitMs: number): Promise<DataDirLock> {
    const until = Date.now() + waitMs;
    for (;;) {
      try {
        return DataDirLock.acquire(dataDir);
      } catch (e) {
        if (Date.now() > until || !(e instanceof OpError)) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  static acquire(dataDir: string): DataDirLock {
    const file = join(dataDir, 'core.lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(file, 'wx', 0o600);
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        return new DataDirLock(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const owner = Number.parseInt(readFileSync(file, 'utf8'), 10);
        if (Number.isInteger(owner) && owner !== process.pid && existsSync(`/proc/${owner}`)) {
          throw new OpError(
            'Internal',
            `another core (pid ${owner}) is using the data directory ${dataDir}`,
            {
              file,
            },
          );
        }
        rmSync(file, { force: true }); // stale: its core is gone
      }
    }
    throw new OpError('Internal', `cannot take the lock ${file}`, { file });
  }

  release(): void {
    rmSync(this.file, { force: true });
  }
}
