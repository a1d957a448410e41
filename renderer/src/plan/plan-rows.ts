import type { Plan, ResourceAction } from '../../../main/common/contract/index.js';

/** One line of the change list: a resource of a plugin and one value before → after. */
export interface ChangeRow {
  plugin: string;
  resource: string;
  action: ResourceAction;
  path: string;
  before: string;
  after: string;
  irreversible: boolean;
}

/** The plan's changes, one row per changed value, in plugin and resource order; no-ops left out. */
export function changeRows(plan: Plan): ChangeRow[] {
  const rows: ChangeRow[] = [];
  for (const d of plan.diffs) {
    for (const r of d.resources) {
      if (r.action === 'noop') continue;
      for (const c of r.changes) {
        rows.push({
          plugin: d.plugin,
          resource: r.id,
          action: r.action,
          path: c.path,
          before: valueText(c.before),
          after: valueText(c.after),
          irreversible: r.irreversible === true,
        });
      }
    }
  }
  return rows;
}

/**
 * The change rows in the order the apply runs them: each plugin's reversible changes (plugins in
 * dependency order), then every irreversible change, last, as the core runs them.
 */
export function inApplyOrder(rows: readonly ChangeRow[]): {
  byPlugin: [plugin: string, rows: ChangeRow[]][];
  irreversible: ChangeRow[];
} {
  const byPlugin = new Map<string, ChangeRow[]>();
  const irreversible: ChangeRow[] = [];
  for (const r of rows) {
    if (r.irreversible) irreversible.push(r);
    else byPlugin.set(r.plugin, [...(byPlugin.get(r.plugin) ?? []), r]);
  }
  return { byPlugin: [...byPlugin], irreversible };
}

/** A value as the admin reads it: JSON, with absence spelled out. */
export function valueText(v: unknown): string {
  if (v === undefined) return '(absent)';
  return JSON.stringify(v);
}

/**
 * The current state narrowed to what the desired document names, in the document's key order:
 * the diff then shows only what the plan can change, not every property the plugin reports.
 */
export function projectOnto(current: unknown, desired: unknown): unknown {
  if (!isPlainObject(desired) || !isPlainObject(current)) return current;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(desired)) {
    if (Object.hasOwn(current, key)) out[key] = projectOnto(current[key], desired[key]);
  }
  return out;
}

/** The two sides of the plan's diff editor, as pretty-printed JSON. */
export function diffTexts(plan: Plan): { current: string; desired: string } {
  return {
    current: JSON.stringify(projectOnto(plan.current, plan.desired), null, 2) + '\n',
    desired: JSON.stringify(plan.desired, null, 2) + '\n',
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The rows matching every word of a filter, each word found in the plugin, resource, action or values. */
export function filterRows(rows: readonly ChangeRow[], filter: string): ChangeRow[] {
  const words = filter
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w !== '');
  if (words.length === 0) return [...rows];
  return rows.filter((r) => {
    const hay = `${r.plugin} ${r.resource} ${r.action} ${r.path} ${r.before} ${r.after}`.toLowerCase();
    return words.every((w) => hay.includes(w));
  });
}

/** "3 create, 1 modify" for a group's heading. */
export function actionCounts(rows: readonly ChangeRow[]): string {
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.action, (counts.get(r.action) ?? 0) + 1);
  return [...counts.entries()].map(([a, n]) => `${n} ${a}`).join(', ');
}

/** A resource the core says cannot be applied on this host, as a sentence naming plugin and resource. */
export interface ResourceProblem {
  plugin: string;
  resource: string;
  sentence: string;
}

/** The plan's resources that carry an error (the apply would fail there), each one sentence. */
export function resourceProblems(plan: Plan): ResourceProblem[] {
  const out: ResourceProblem[] = [];
  for (const d of plan.diffs) {
    for (const r of d.resources) {
      if (r.error === undefined || r.error.trim() === '') continue;
      const text = r.error.trim();
      out.push({
        plugin: d.plugin,
        resource: r.id,
        sentence: `${d.plugin} ${r.id}: ${text}${/[.!?)]$/.test(text) ? '' : '.'}`,
      });
    }
  }
  return out;
}
