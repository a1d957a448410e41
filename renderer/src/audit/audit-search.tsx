import { useState, type FormEvent } from 'react';
import {
  AuditKind,
  type AuditSearchRequest,
  type AuditSearchResponse,
} from '../../../main/common/contract/index.js';
import { useAuditSearch } from '../core/core-queries.js';
import { ErrorNotice } from '../shell/error-notice.js';
import { InclusionCheck } from './inclusion-check.js';
import { EMPTY_SEARCH, partText, partWidth, searchRequest, type SearchForm } from './search-form.js';

/**
 * Search the audit log by meaning (issue 20): the core fuses BM25 over the summaries with the
 * active embedder's similarity; each result shows its score, both parts, the entry, and a
 * "verify inclusion" that the relay checks against the witnessed checkpoint.
 */
export function AuditSearch() {
  const [form, setForm] = useState<SearchForm>(EMPTY_SEARCH);
  const [submitted, setSubmitted] = useState<AuditSearchRequest | undefined>(undefined);
  const [formError, setFormError] = useState<string | undefined>(undefined);
  const search = useAuditSearch(submitted);
  const set = (key: keyof SearchForm) => (e: { target: { value: string } }) =>
    setForm((f) => ({ ...f, [key]: e.target.value }));

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    const r = searchRequest(form);
    if ('error' in r) {
      setFormError(r.error);
      return;
    }
    setFormError(undefined);
    if (JSON.stringify(r.request) === JSON.stringify(submitted)) void search.refetch();
    else setSubmitted(r.request);
  };

  return (
    <div className="panel audit-search" data-testid="audit-search">
      <div className="panel-head">Search by meaning</div>
      <form
        className="search-form"
        role="search"
        aria-label="Search the audit log by meaning"
        onSubmit={submit}
      >
        <input
          type="search"
          className="search-query"
          data-testid="search-query"
          aria-label="What are you looking for"
          placeholder='e.g. "when did we open the VPN port?"'
          value={form.query}
          onChange={set('query')}
        />
        <select
          aria-label="Only entries of kind"
          data-testid="search-kind"
          value={form.kind}
          onChange={set('kind')}
        >
          <option value="">any kind</option>
          {AuditKind.options.map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
        <input
          type="text"
          aria-label="Only entries of plugin"
          data-testid="search-plugin"
          placeholder="plugin"
          value={form.plugin}
          onChange={set('plugin')}
          size={10}
        />
        <label className="search-time">
          since
          <input
            type="datetime-local"
            aria-label="since"
            data-testid="search-since"
            value={form.since}
            onChange={set('since')}
          />
        </label>
        <label className="search-time">
          until
          <input
            type="datetime-local"
            aria-label="until"
            data-testid="search-until"
            value={form.until}
            onChange={set('until')}
          />
        </label>
        <button type="submit" className="primary" data-testid="search-button" disabled={search.isFetching}>
          {search.isFetching ? 'Searching…' : 'Search'}
        </button>
      </form>
      {formError !== undefined && (
        <div className="notice notice-warning" role="alert" data-testid="search-form-error">
          <span className="notice-text">{formError}</span>
        </div>
      )}
      <ErrorNotice error={search.error} title="The search failed" />
      {search.data !== undefined && <SearchResults answer={search.data} />}
    </div>
  );
}

function SearchResults({ answer }: { answer: AuditSearchResponse }) {
  return (
    <>
      <div className="panel-note" data-testid="search-method">
        {answer.results.length} result{answer.results.length === 1 ? '' : 's'} of {answer.size} entries ·{' '}
        {answer.model === null ? (
          'words only: no embedder runs'
        ) : (
          <>
            meaning by <strong>{answer.model.name}</strong> ({answer.model.label}),{' '}
            {answer.method === 'ann' ? 'approximate (HNSW) neighbours' : 'every vector scored'}
          </>
        )}
        {answer.exact.length > 0 && <> · identifiers matched exactly: {answer.exact.join(', ')}</>}
        {answer.queued > 0 && <> · {answer.queued} entries not embedded yet (they match by words only)</>}
      </div>
      {answer.results.length === 0 ? (
        <div className="panel-empty">Nothing in the log matches.</div>
      ) : (
        <table className="audit-table search-results" data-testid="search-results">
          <thead>
            <tr>
              <th>Score</th>
              <th>Words</th>
              <th>Meaning</th>
              <th>#</th>
              <th>Kind</th>
              <th>Plugin</th>
              <th>Summary</th>
              <th>Proof</th>
            </tr>
          </thead>
          <tbody>
            {answer.results.map((r) => (
              <tr
                key={r.seq}
                data-testid="search-result"
                data-seq={r.seq}
                data-score={r.score}
                data-lexical={r.parts.lexical ?? ''}
                data-semantic={r.parts.semantic ?? ''}
              >
                <td className="mono score">{r.score.toFixed(3)}</td>
                <td>
                  <Part value={r.parts.lexical} side="lexical" />
                </td>
                <td>
                  <Part value={r.parts.semantic} side="semantic" />
                </td>
                <td className="seq">{r.entry.seq}</td>
                <td>
                  <span className={`badge kind-${r.entry.kind}`}>{r.entry.kind}</span>
                  <div className="muted">{new Date(r.entry.time).toLocaleString()}</div>
                </td>
                <td>{r.entry.plugin ?? '—'}</td>
                <td className="summary">{r.entry.summary}</td>
                <td className="proof">
                  <InclusionCheck seq={r.seq} />
                  <div className="muted mono" title="the CLI command that prints this proof">
                    {r.prove}
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function Part({ value, side }: { value: number | null; side: 'lexical' | 'semantic' }) {
  return (
    <span
      className={`score-part ${side}`}
      title={side === 'lexical' ? 'BM25, scaled within this answer' : 'cosine similarity'}
    >
      <span className="part-bar" aria-hidden>
        <span style={{ width: `${partWidth(value)}%` }} />
      </span>
      <span className={value === null ? 'muted' : 'mono'}>{partText(value, side)}</span>
    </span>
  );
}
