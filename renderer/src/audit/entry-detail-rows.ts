import { PluginDiff } from '../../../main/common/contract/index.js';
import { valueText } from '../plan/plan-rows.js';

/** One change an audit entry's payload records: what a plan would change, or what an apply ran. */
export interface PayloadChange {
  plugin: string;
  resource: string;
  action: string;
  path: string;
  before: string;
  after: string;
}

/**
 * The changes in an entry's payload, before → after, when it holds a plan's diffs (plan entries hold the
 * plan as it was shown and approved); empty for payloads without them (an apply names its plan by hash).
 * The payload is the core's, but read as untrusted: anything that is not a diff list is no change.
 */
export function payloadChanges(payload: unknown): PayloadChange[] {
  if (typeof payload !== 'object' || payload === null) return [];
  const parsed = PluginDiff.array().safeParse((payload as { diffs?: unknown }).diffs);
  if (!parsed.success) return [];
  return parsed.data.flatMap((d) =>
    d.resources
      .filter((r) => r.action !== 'noop')
      .flatMap((r) =>
        (r.changes.length > 0 ? r.changes : [{ path: '', before: undefined, after: undefined }]).map((c) => ({
          plugin: d.plugin,
          resource: r.id,
          action: r.action,
          path: c.path,
          before: c.path === '' ? '' : valueText(c.before),
          after: c.path === '' ? '' : valueText(c.after),
        })),
      ),
  );
}

/** The payload as indented JSON for reading, cut at `max` characters (a 10,000-flow plan is megabytes). */
export function payloadText(payload: unknown, max = 20_000): string {
  const text = JSON.stringify(payload, null, 2) ?? 'null';
  return text.length <= max
    ? text
    : `${text.slice(0, max)}\n… (${(text.length - max).toLocaleString('en-US')} more characters)`;
}
