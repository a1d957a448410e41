import { AuditKind, type AuditSearchRequest } from '../../../main/common/contract/index.js';

/** What the search box holds: the words, and the filters as their inputs give them (strings). */
export interface SearchForm {
  query: string;
  kind: string;
  plugin: string;
  /** `datetime-local` values (local time, no zone), or ''. */
  since: string;
  until: string;
}

export const EMPTY_SEARCH: SearchForm = { query: '', kind: '', plugin: '', since: '', until: '' };

/**
 * The AuditSearch request for a form, or a sentence saying what to fix. Times are the browser's
 * local time turned into ISO 8601 (UTC), the form the core compares.
 */
export function searchRequest(
  form: SearchForm,
  limit = 20,
): { request: AuditSearchRequest } | { error: string } {
  const query = form.query.trim();
  if (query === '') return { error: 'Type what you are looking for.' };
  if (query.length > 1000) return { error: 'The search is longer than 1,000 characters.' };
  const request: AuditSearchRequest = { query, limit };
  if (form.kind !== '') {
    const kind = AuditKind.safeParse(form.kind);
    if (!kind.success) return { error: `"${form.kind}" is not a kind of audit entry.` };
    request.kind = kind.data;
  }
  const plugin = form.plugin.trim();
  if (plugin !== '') request.plugin = plugin;
  for (const key of ['since', 'until'] as const) {
    const v = form[key].trim();
    if (v === '') continue;
    const t = new Date(v);
    if (Number.isNaN(t.getTime())) return { error: `The "${key}" time ${JSON.stringify(v)} is not a date.` };
    request[key] = t.toISOString();
  }
  if (request.since !== undefined && request.until !== undefined && request.since >= request.until) {
    return { error: '"since" must be before "until".' };
  }
  return { request };
}

/** A score part for a person: two decimals, or why there is none. */
export function partText(part: number | null, side: 'lexical' | 'semantic'): string {
  if (part === null) return side === 'lexical' ? 'no word matched' : 'not embedded yet';
  return part.toFixed(2);
}

/** The width (0..100 %) of a part's bar; parts are 0..1 (cosine may dip below 0: drawn as empty). */
export function partWidth(part: number | null): number {
  if (part === null || !Number.isFinite(part)) return 0;
  return Math.round(Math.max(0, Math.min(1, part)) * 100);
}
