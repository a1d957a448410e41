import type { ApplyProgress } from '../../../main/common/contract/index.js';

/**
 * The steps of one converge among the ApplyProgress signals received while it ran. A converge is
 * an apply of a new plan whose id the console learns only from the answer, so the apply is
 * recognised by its start step: the one naming the reviewed plan's hash (the dry run and the real
 * run plan the same document against the same host), else the first apply that started meanwhile
 * (the core runs one apply at a time). Steps of any other plan are left out.
 */
export function convergeSteps(
  events: readonly ApplyProgress[],
  reviewedHash: string | undefined,
): ApplyProgress[] {
  const starts = events.filter((e) => e.step === 'start');
  const ours =
    (reviewedHash !== undefined ? starts.find((e) => e.message.includes(reviewedHash)) : undefined) ??
    starts[0];
  if (ours === undefined) return [];
  return events.filter((e) => e.planId === ours.planId);
}
