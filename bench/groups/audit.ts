import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AppendInput, AuditLog } from '../../main/service/audit/log.js';
import { verifyInclusion, verifyConsistency } from '../../main/common/transparency/merkle.js';
import { leafHashOfText } from '../../main/common/transparency/rfc6962.js';
import type { BenchCase, BenchGroup, StartedGroup } from '../harness.js';
import { median } from '../statistics.js';

/** Entries in each log; AUDIT_BENCH_SIZE=100000 for a quick run (the 1M figures are the issue's). */
const SIZE = sizeFromEnv();
/** Entries per group-commit batch while filling (the log's own maxBatch). */
const FILL_BATCH = 4096;
/** Entries per measured append operation: one group commit of this many queued appends. */
const CASE_BATCH = 1024;
/** Full verifies timed per thread count (in start: each takes seconds, too long for 200 rounds). */
const VERIFY_RUNS = 3;
const MILESTONES = [10_000, 100_000, 1_000_000];
/** Older tree sizes (and their roots, as a client's saved checkpoints hold them) the consistency cases cycle through. */
const HELD_ROOTS = 256;

function sizeFromEnv(): number {
  const text = process.env['AUDIT_BENCH_SIZE'];
  if (text === undefined || text === '') return 1_000_000;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1000)
    throw new Error(`AUDIT_BENCH_SIZE must be an integer ≥ 1000, got "${text}"`);
  return n;
}

/**
 * An entry like the engine's apply entries: ~300 bytes of canonical JSON (measured and reported in the
 * notes), a summary that differs per entry, two durations.
 */
function entry(i: number): AppendInput {
  return {
    kind: 'apply',
    actor: { uid: 1000, subject: ':1.42' },
    plugin: 'hostname',
    summary: `apply plan ${((i * 2654435761) % 2 ** 32).toString(16).padStart(8, '0')}: applied (1 change)`,
    durations: { apply_ms: 12.5 + (i % 100), plan_ms: 1.25 },
  };
}

/** Appends `count` entries from seq `from` through appendQueued (group commit) and waits for every one. */
async function appendQueued(log: AuditLog, from: number, count: number): Promise<void> {
  const pending: Promise<unknown>[] = [];
  for (let i = from; i < from + count; i++) pending.push(log.appendQueued(entry(i)));
  await Promise.all(pending);
}

/** Fills a new log to SIZE through group commit; returns the log and the throughput at each milestone. */
async function fill(
  file: string,
  synchronous: 'NORMAL' | 'FULL',
): Promise<{ log: AuditLog; notes: string[] }> {
  const log = AuditLog.open(file, { synchronous, maxBatch: FILL_BATCH });
  const marks = [...MILESTONES.filter((m) => m < SIZE), SIZE];
  const t0 = process.hrtime.bigint();
  const rates: string[] = [];
  for (let done = 0; done < SIZE;) {
    // Land on each milestone exactly, so its rate is the rate up to that size.
    const count = Math.min(FILL_BATCH * 8, (marks[0] as number) - done);
    await appendQueued(log, done, count);
    done += count;
    while (marks.length > 0 && done >= (marks[0] as number)) {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      rates.push(
        `${(marks.shift() as number).toLocaleString('en-US')}: ${Math.round(done / s).toLocaleString('en-US')}/s`,
      );
    }
  }
  return {
    log,
    notes: [
      `appends/s with group commit (batches of ${FILL_BATCH}) at ${synchronous}, cumulative from 0 to ${rates.join(', ')}`,
    ],
  };
}

/** Times `runs` full verifies on `threads` threads; throws if one is not ok (the log was built intact). */
function timeVerify(log: AuditLog, threads: number, runs: number): { ms: number[]; used: number } {
  const ms: number[] = [];
  let used = 0;
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    const { response, run } = log.verifyRun(undefined, { threads });
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (!response.ok) throw new Error(`verify of an intact log failed: ${JSON.stringify(response.firstBad)}`);
    used = run.threads;
  }
  return { ms, used };
}

/**
 * The audit log's performance targets (issue 5): group-commit appends at synchronous NORMAL and FULL,
 * full verify of SIZE entries on 1 and N threads, inclusion and consistency proofs at SIZE.
 */
export const auditGroup: BenchGroup = {
  name: 'audit',
  description:
    `Audit log: fills two logs of ${SIZE.toLocaleString('en-US')} entries (~300 B canonical JSON) through group commit ` +
    `at synchronous NORMAL and FULL (throughput at 10k/100k/1M in the notes), times full verifies on 1 and ` +
    `${availableParallelism()} threads (notes), then measures one group commit of ${CASE_BATCH} appends at each level ` +
    'and inclusion/consistency proof generation (alone, and with verification) at the full size.',
  baseline: 'inclusion-proof',
  start: async (): Promise<StartedGroup> => {
    const dir = mkdtempSync(join(tmpdir(), 'opdbus-bench-audit-'));
    const logs: AuditLog[] = [];
    const stop = async (): Promise<void> => {
      for (const l of logs) l.close();
      rmSync(dir, { recursive: true, force: true });
    };
    try {
      const normal = await fill(join(dir, 'normal', 'audit.sqlite'), 'NORMAL');
      logs.push(normal.log);
      const full = await fill(join(dir, 'full', 'audit.sqlite'), 'FULL');
      logs.push(full.log);
      const bodyBytes = Buffer.byteLength(normal.log.exportLeaves(SIZE - 1, 1)[0]?.body ?? '');
      const threads = availableParallelism();
      const one = timeVerify(normal.log, 1, VERIFY_RUNS);
      const many = timeVerify(normal.log, threads, VERIFY_RUNS);
      const fmt = (ms: number[]): string => ms.map((m) => `${(m / 1000).toFixed(2)} s`).join(', ');
      const notes = [
        `${SIZE.toLocaleString('en-US')} entries per log; the last entry is ${bodyBytes} bytes of canonical JSON`,
        ...normal.notes,
        ...full.notes,
        `full verify of ${SIZE.toLocaleString('en-US')} (NORMAL log), 1 thread: ${fmt(one.ms)} (median ${(median(one.ms) / 1000).toFixed(2)} s)`,
        `full verify, ${many.used} threads (${threads} asked): ${fmt(many.ms)} (median ${(median(many.ms) / 1000).toFixed(2)} s)`,
      ];

      const log = normal.log;
      const size = SIZE;
      const root = log.rootAt(size);
      let k = 0;
      // Proof targets spread over the log (a fixed stride, so every round asks for another one).
      const nextSeq = (): number => (k = (k + 7_919_731) % size);
      // A client holds the root of the older tree from a checkpoint it saved: computed here, not timed.
      const held = Array.from({ length: HELD_ROOTS }, (_, i) => {
        const old = 1 + ((i * 7_919_731) % (size - 1));
        return { old, root: log.rootAt(old) };
      });
      let h = 0;
      const appended = { NORMAL: size, FULL: size };
      const appendCase = (name: string, l: AuditLog, level: 'NORMAL' | 'FULL'): BenchCase => ({
        name,
        run: async () => {
          await appendQueued(l, appended[level], CASE_BATCH);
          appended[level] += CASE_BATCH;
        },
      });
      const cases: BenchCase[] = [
        {
          // what `audit prove` asks of the log: the proof and the entry's bytes, in one read transaction
          name: 'inclusion-proof',
          run: async () => {
            const { proof } = log.inclusionProof(nextSeq(), size);
            if (proof.length === 0) throw new Error('empty inclusion proof');
          },
        },
        {
          name: 'consistency-proof',
          run: async () => {
            const proof = log.consistencyProof(nextSeq() + 1, size);
            if (proof.length === 0 && k + 1 !== size) throw new Error('empty consistency proof');
          },
        },
        {
          // a client's side: generate, then check against the root, as `audit verify-proof` does offline
          name: 'inclusion-prove+verify',
          run: async () => {
            const seq = nextSeq();
            const { body, proof } = log.inclusionProof(seq, size);
            const ok = verifyInclusion(leafHashOfText(body), seq, size, proof, root);
            if (!ok.ok) throw new Error(ok.reason);
          },
        },
        {
          name: 'consistency-prove+verify',
          run: async () => {
            const { old, root: oldRoot } = held[(h = (h + 1) % HELD_ROOTS)] as { old: number; root: Buffer };
            const proof = log.consistencyProof(old, size);
            const ok = verifyConsistency(old, size, oldRoot, root, proof);
            if (!ok.ok) throw new Error(ok.reason);
          },
        },
        appendCase(`append-${CASE_BATCH}-normal`, normal.log, 'NORMAL'),
        appendCase(`append-${CASE_BATCH}-full`, full.log, 'FULL'),
      ];
      return {
        cases,
        notes,
        notesAfter: async () => [
          `appends/s in the measured group commits of ${CASE_BATCH} = ${CASE_BATCH} / that case's median (the proofs ran ` +
            `against the tree of ${size.toLocaleString('en-US')} entries while the log grew behind it)`,
        ],
        stop,
      };
    } catch (e) {
      await stop().catch(() => undefined);
      throw e;
    }
  },
};
