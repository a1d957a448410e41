import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { OpError } from '../../common/contract/index.js';
import { replaceFileDurably } from '../storage/durable-file.js';

/**
 * The last document applied and verified, with the hash of the plan that applied it: what drift is
 * measured against and what converge re-applies. It holds real values (secrets included, which
 * converge needs), so it lives in the data dir, mode 0600, like the journal.
 */
export const LastApplied = z.object({
  planHash: z.string(),
  appliedAt: z.string(),
  file: z.string().optional(),
  sections: z.record(z.string(), z.unknown()),
});
export type LastApplied = z.infer<typeof LastApplied>;

export class LastAppliedStore {
  readonly file: string;

  constructor(dataDir: string) {
    this.file = join(dataDir, 'last-applied.json');
  }

  /** Replaces the record atomically (write, fsync, rename, fsync the directory). */
  save(record: LastApplied): void {
    replaceFileDurably(this.file, JSON.stringify(record) + '\n');
  }

  /** The record, or undefined when nothing was ever applied here. */
  load(): LastApplied | undefined {
    if (!existsSync(this.file)) return undefined;
    const parsed = LastApplied.safeParse(JSON.parse(readFileSync(this.file, 'utf8')));
    if (!parsed.success) {
      throw new OpError(
        'Internal',
        `${this.file} is not a last-applied record: ${parsed.error.issues[0]?.message ?? ''}`,
        {
          file: this.file,
        },
      );
    }
    return parsed.data;
  }
}
