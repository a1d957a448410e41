import type { z } from 'zod';
import { OpError, type WitnessReport, type WitnessSeen } from '../../common/contract/index.js';

/** The witness check's outcome, as witness.ts returns it. */
export type WitnessOutcomeLike =
  | {
      status: 'first-seen' | 'unchanged' | 'consistent';
      record: { endpoint: string; size: number; root: string; seenAt: string };
      previous?: { size: number; root: string; seenAt: string };
    }
  | { status: 'skipped'; reason: string };

const UNWRITABLE_STATE = new Set(['EACCES', 'ENOENT', 'EROFS', 'EPERM']);

/**
 * Runs the witness check and turns its outcome, or what it threw, into the report the console
 * shows. The same policy as the CLI (main/client/cli/io.ts): an AuditCorrupt error is tampering; a user
 * without a writable state dir is not witnessed; anything else that stops the check is reported.
 */
export async function witnessReport(
  check: () => Promise<WitnessOutcomeLike>,
  opts: { off?: boolean; endpoint: string },
): Promise<WitnessReport> {
  if (opts.off === true) return { status: 'not-witnessed', reason: 'switched off (OP_DBUS_WITNESS=off)' };
  let outcome: WitnessOutcomeLike;
  try {
    outcome = await check();
  } catch (e) {
    if (e instanceof OpError && e.code === 'AuditCorrupt') {
      const details = e.details as
        { what?: string; previous?: { size: number; root: string; seenAt: string } } | undefined;
      const previous = details?.previous;
      return {
        status: 'tampering',
        endpoint: opts.endpoint,
        reason: details?.what ?? e.message,
        ...(previous !== undefined ? { previous: seen(previous) } : {}),
      };
    }
    const errno = (e as { code?: unknown } | null)?.code;
    const why = e instanceof Error ? e.message : String(e);
    return {
      status: 'not-witnessed',
      reason:
        typeof errno === 'string' && UNWRITABLE_STATE.has(errno)
          ? `no writable state directory for the witness (${why})`
          : `the witness could not run: ${why}`,
    };
  }
  if (outcome.status === 'skipped') return { status: 'not-witnessed', reason: outcome.reason };
  const checkpoint = seen(outcome.record);
  if (outcome.status === 'first-seen') {
    return { status: 'first-contact', endpoint: outcome.record.endpoint, checkpoint };
  }
  return {
    status: 'in-sync',
    endpoint: outcome.record.endpoint,
    checkpoint,
    ...(outcome.status === 'consistent' && outcome.previous !== undefined
      ? { previous: seen(outcome.previous) }
      : {}),
  };
}

function seen(r: { size: number; root: string; seenAt: string }): z.infer<typeof WitnessSeen> {
  return { size: r.size, root: r.root, seenAt: r.seenAt };
}
