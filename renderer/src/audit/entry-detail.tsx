import type { AuditListEntry } from '../../../main/common/contract/index.js';
import { useAuditPayload } from '../core/core-queries.js';
import { ErrorNotice } from '../shell/error-notice.js';
import { payloadChanges, payloadText } from './entry-detail-rows.js';

/**
 * One entry opened: what the leaf hash covers (payload hash, previous leaf, durations) and its payload,
 * a plan's changes as before → after rows and the payload itself, or why it is no longer stored.
 */
export function EntryDetail({ entry }: { entry: AuditListEntry }) {
  const payload = useAuditPayload(entry.payload_hash);
  const changes = payload.data?.status === 'stored' ? payloadChanges(payload.data.payload) : [];
  return (
    <div className="entry-detail" data-testid="entry-detail" data-seq={entry.seq}>
      <dl className="entry-facts">
        <dt>Leaf</dt>
        <dd>
          <code>{entry.leaf}</code>
        </dd>
        <dt>Previous leaf</dt>
        <dd>
          <code>{entry.prev}</code>
        </dd>
        <dt>Payload hash</dt>
        <dd>{entry.payload_hash === null ? 'no payload' : <code>{entry.payload_hash}</code>}</dd>
        {entry.durations !== null && (
          <>
            <dt>Durations</dt>
            <dd>
              {Object.entries(entry.durations)
                .map(([k, v]) => `${k} ${v.toFixed(1)}`)
                .join(', ')}
            </dd>
          </>
        )}
      </dl>
      <ErrorNotice error={payload.error} title="Could not read the entry's payload" />
      {payload.isFetching && <div className="muted">Reading the payload…</div>}
      {payload.data !== undefined && payload.data.status !== 'stored' && (
        <div className="muted" data-testid="payload-status">
          {payload.data.status === 'pruned'
            ? `Payload pruned ${payload.data.prunedAt ?? ''}${payload.data.reason !== undefined ? `: ${payload.data.reason}` : ''}; its hash stays in the chain.`
            : 'The core does not hold this payload.'}
        </div>
      )}
      {changes.length > 0 && (
        <table className="entry-changes" data-testid="entry-changes">
          <caption>Changes in this payload</caption>
          <thead>
            <tr>
              <th>Plugin</th>
              <th>Resource</th>
              <th>Action</th>
              <th>Path</th>
              <th>Before</th>
              <th>After</th>
            </tr>
          </thead>
          <tbody>
            {changes.map((c, i) => (
              <tr key={i} data-testid="entry-change">
                <td>{c.plugin}</td>
                <td>{c.resource}</td>
                <td>
                  <span className={`badge action-${c.action}`}>{c.action}</span>
                </td>
                <td>
                  <code>{c.path}</code>
                </td>
                <td className="before">{c.before}</td>
                <td className="after">{c.after}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {payload.data?.status === 'stored' && (
        <details>
          <summary>Payload</summary>
          <pre className="entry-payload" data-testid="entry-payload" tabIndex={0}>
            {payloadText(payload.data.payload)}
          </pre>
        </details>
      )}
    </div>
  );
}
