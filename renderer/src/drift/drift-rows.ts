import type { DriftResponse } from '../../../main/common/contract/index.js';
import { valueText } from '../plan/plan-rows.js';

/** One drifted value: where, what was applied, and what the host has now. */
export interface DriftRow {
  plugin: string;
  path: string;
  applied: string;
  host: string;
}

/** The drifted values as the admin reads them, in the core's (apply) order. */
export function driftRows(r: DriftResponse): DriftRow[] {
  return r.drift.map((d) => ({
    plugin: d.plugin,
    path: d.path,
    applied: valueText(d.expected),
    host: valueText(d.actual),
  }));
}

/** What the drift answer says, in words; the view follows it with the applied plan's hash and time. */
export function driftHeadline(r: DriftResponse): string {
  if (r.planHash === null) return 'Nothing has been applied on this host yet: there is no drift to measure.';
  if (r.inSync) return 'In sync with applied plan';
  const n = r.drift.length;
  return `${n} value${n === 1 ? '' : 's'} drifted from applied plan`;
}
