import type { ApplyRequest } from '../../../main/common/contract/index.js';

/** The irreversible changes (`plugin/resource`) the admin has not ticked yet, in the plan's order. */
export function unconfirmed(irreversible: readonly string[], confirmed: ReadonlySet<string>): string[] {
  return irreversible.filter((name) => !confirmed.has(name));
}

/**
 * What an Apply or Converge request carries once every irreversible change is ticked: the plan's
 * list exactly as the core made it (the core compares names), and nothing for a plan without any.
 */
export function confirmationOf(irreversible: readonly string[]): Pick<ApplyRequest, 'confirmIrreversible'> {
  return irreversible.length > 0 ? { confirmIrreversible: [...irreversible] } : {};
}

/** The set of ticked names after one checkbox changed. */
export function toggled(confirmed: ReadonlySet<string>, name: string, on: boolean): ReadonlySet<string> {
  const next = new Set(confirmed);
  if (on) next.add(name);
  else next.delete(name);
  return next;
}

/**
 * The irreversible changes that had run when an apply failed or was cancelled: the rollback cannot
 * undo them, so the console says which. The core puts them in the error's details.
 */
export function irreversibleRanOf(details: unknown): string[] {
  if (typeof details !== 'object' || details === null || !('irreversibleRan' in details)) return [];
  const ran = details.irreversibleRan;
  return Array.isArray(ran) ? ran.filter((r): r is string => typeof r === 'string') : [];
}
