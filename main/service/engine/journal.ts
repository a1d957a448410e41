import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { replaceFileDurably } from '../storage/durable-file.js';

/**
 * The apply journal (DESIGN.md section 4): before each change to the host the intent and the
 * checkpoint are written and fsynced, so a core killed at any step can undo or confirm the apply
 * at its next start. One JSON record per line; a torn last line (a crash mid-write) is ignored.
 */
export const JournalRecord = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('begin'),
    applyId: z.string(),
    planId: z.string(),
    hash: z.string(),
    plugins: z.array(z.string()),
    time: z.string(),
    /** The snapshot of the plugins' on-disk state taken before the apply, restored on rollback. */
    snapshot: z.string().optional(),
    /** The desired sections: recovery keeps them as the last applied document when every plugin verified. */
    document: z.record(z.string(), z.unknown()).optional(),
    /** For a converge: the applied plan it re-establishes, which stays the one drift is measured against. */
    convergeOf: z.object({ planHash: z.string(), appliedAt: z.string() }).optional(),
    /** `plugin/resource` of the irreversible changes, which run last. */
    irreversible: z.array(z.string()).optional(),
  }),
  /** Written before a plugin's irreversible changes start: after a crash they are reported, never undone. */
  z.object({
    type: z.literal('irreversible'),
    applyId: z.string(),
    plugin: z.string(),
    resources: z.array(z.string()),
  }),
  z.object({
    type: z.literal('checkpoint'),
    applyId: z.string(),
    plugin: z.string(),
    checkpoint: z.unknown(),
  }),
  z.object({ type: z.literal('applied'), applyId: z.string(), plugin: z.string() }),
  z.object({ type: z.literal('verified'), applyId: z.string(), plugin: z.string() }),
  z.object({ type: z.literal('rolled-back'), applyId: z.string(), plugin: z.string() }),
  z.object({
    type: z.literal('end'),
    applyId: z.string(),
    outcome: z.enum(['applied', 'rolled-back', 'rollback-failed']),
  }),
]);
export type JournalRecord = z.infer<typeof JournalRecord>;

/** What the journal knows of an apply that never reached its end record. */
export interface UnfinishedApply {
  begin: Extract<JournalRecord, { type: 'begin' }>;
  checkpoints: Map<string, unknown>;
  applied: Set<string>;
  verified: Set<string>;
  rolledBack: Set<string>;
  /** `plugin/resource` of irreversible changes that had started. */
  irreversibleStarted: string[];
}

export class ApplyJournal {
  readonly file: string;

  constructor(dataDir: string) {
    this.file = join(dataDir, 'apply-journal.jsonl');
  }

  /** Starts a new apply: the file is replaced atomically, so it only ever holds the latest apply. */
  begin(record: Extract<JournalRecord, { type: 'begin' }>): void {
    replaceFileDurably(this.file, JSON.stringify(record) + '\n');
  }

  /** Appends one record and returns only once it is on disk. */
  record(record: Exclude<JournalRecord, { type: 'begin' }>): void {
    const fd = openSync(this.file, 'a', 0o600);
    try {
      writeSync(fd, JSON.stringify(record) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** The apply in the journal that has no end record, if any. */
  unfinished(): UnfinishedApply | undefined {
    if (!existsSync(this.file)) return undefined;
    const records: JournalRecord[] = [];
    const text = readFileSync(this.file, 'utf8');
    let goodBytes = 0;
    for (const line of text.split('\n')) {
      if (line.trim() === '') {
        goodBytes += Buffer.byteLength(line) + 1;
        continue;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        break; // a torn write can only be the last line
      }
      const r = JournalRecord.safeParse(parsed);
      if (!r.success) break;
      records.push(r.data);
      goodBytes += Buffer.byteLength(line) + 1;
    }
    // cut a torn tail off, or the next record would be glued to it and lost as well
    if (goodBytes < Buffer.byteLength(text)) this.truncate(goodBytes);
    const begin = records[0];
    if (begin?.type !== 'begin') return undefined;
    const state: UnfinishedApply = {
      begin,
      checkpoints: new Map(),
      applied: new Set(),
      verified: new Set(),
      rolledBack: new Set(),
      irreversibleStarted: [],
    };
    for (const r of records.slice(1)) {
      if (r.applyId !== begin.applyId) continue;
      switch (r.type) {
        case 'end':
          return undefined;
        case 'checkpoint':
          state.checkpoints.set(r.plugin, r.checkpoint);
          break;
        case 'applied':
          state.applied.add(r.plugin);
          break;
        case 'verified':
          state.verified.add(r.plugin);
          break;
        case 'rolled-back':
          state.rolledBack.add(r.plugin);
          break;
        case 'irreversible':
          state.irreversibleStarted.push(...r.resources);
          break;
        case 'begin':
          break;
      }
    }
    return state;
  }

  private truncate(bytes: number): void {
    const fd = openSync(this.file, 'r+');
    try {
      ftruncateSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}
