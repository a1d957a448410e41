import { Fragment, useState } from 'react';
import { AuditSearch } from './audit-search.js';
import { EmbedderStatus } from './embedder-status.js';
import { EntryDetail } from './entry-detail.js';
import { InclusionCheck } from './inclusion-check.js';
import { AuditKind, type AuditListRequest } from '../../../main/common/contract/index.js';
import { useAuditList, useAuditVerify, useWitness } from '../core/core-queries.js';
import { ErrorNotice } from '../shell/error-notice.js';
import { useConsoleStore } from '../state/console-store.js';
import { witnessNotice } from './witness-status.js';

const PAGE = 200;

/** The audit log, newest first, with the chain's verification state. */
export function AuditView() {
  const [kind, setKind] = useState<AuditKind | ''>('');
  const [text, setText] = useState('');
  const filter: AuditListRequest = {
    limit: PAGE,
    ...(kind !== '' ? { kind } : {}),
    ...(text.trim() !== '' ? { text: text.trim() } : {}),
  };
  const list = useAuditList(filter);
  const verify = useAuditVerify();
  const witness = useWitness();
  const planHash = useConsoleStore((s) => s.plan?.hash);
  const [open, setOpen] = useState<number | undefined>(undefined);

  return (
    <section className="view audit-view" aria-label="Audit log">
      <WitnessBanner witness={witness} />
      <div className="toolbar">
        <div className="toolbar-group">
          <ChainState verify={verify.data} pending={verify.isPending} />
        </div>
        <div className="toolbar-group">
          <select aria-label="kind" value={kind} onChange={(e) => setKind(e.target.value as AuditKind | '')}>
            <option value="">all kinds</option>
            {AuditKind.options.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
          <input
            type="search"
            placeholder="Filter summaries"
            value={text}
            onChange={(e) => setText(e.target.value)}
            aria-label="search"
          />
          <button
            type="button"
            onClick={() => {
              void list.refetch();
              void verify.refetch();
              void witness.refetch();
            }}
          >
            Refresh
          </button>
        </div>
      </div>
      <EmbedderStatus />
      <AuditSearch />
      <ErrorNotice error={list.error} title="Could not read the audit log" />
      <ErrorNotice error={verify.error} title="Could not verify the audit chain" />
      <div className="panel audit-table-wrap">
        <table className="audit-table" data-testid="audit-table">
          <thead>
            <tr>
              <th>#</th>
              <th>Time</th>
              <th>Kind</th>
              <th>Actor</th>
              <th>Plugin</th>
              <th>Summary</th>
              <th>Proof</th>
            </tr>
          </thead>
          <tbody>
            {list.data?.entries.map((e) => (
              <Fragment key={e.seq}>
                <tr data-testid="audit-row" data-kind={e.kind} data-seq={e.seq}>
                  <td className="seq">
                    <button
                      type="button"
                      className="link-button"
                      data-testid="entry-toggle"
                      aria-expanded={open === e.seq}
                      aria-label={`entry ${e.seq}: ${open === e.seq ? 'hide' : 'show'} its detail`}
                      onClick={() => setOpen(open === e.seq ? undefined : e.seq)}
                    >
                      {e.seq}
                    </button>
                  </td>
                  <td className="time">{new Date(e.time).toLocaleString()}</td>
                  <td>
                    <span className={`badge kind-${e.kind}`}>{e.kind}</span>
                  </td>
                  <td className="actor">
                    {e.actor.uid === null ? e.actor.subject : `uid ${e.actor.uid}`}
                    {e.actor.action !== undefined && <div className="muted">{e.actor.action}</div>}
                  </td>
                  <td>{e.plugin ?? '—'}</td>
                  <td className="summary">
                    <Summary text={e.summary} highlight={planHash} />
                  </td>
                  <td className="proof">
                    <InclusionCheck seq={e.seq} />
                  </td>
                </tr>
                {open === e.seq && (
                  <tr className="entry-detail-row">
                    <td colSpan={7}>
                      <EntryDetail entry={e} />
                    </td>
                  </tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
        {list.data !== undefined && list.data.entries.length === 0 && (
          <div className="panel-empty">No entries.</div>
        )}
        {list.data !== undefined && (
          <div className="table-foot muted">
            Showing {list.data.entries.length} of {list.data.size} entries
          </div>
        )}
      </div>
    </section>
  );
}

/**
 * The witness's verdict, run by the relay (the user's own process) against the checkpoint this
 * user saw before: it is what a root on the host cannot fake, so it comes first, red on tampering.
 */
function WitnessBanner({ witness }: { witness: ReturnType<typeof useWitness> }) {
  if (witness.isPending) {
    return (
      <div className="witness witness-pending" data-testid="witness" data-status="pending">
        <strong>Witness</strong>
        <span className="witness-detail">
          checking the host's signed log against the last checkpoint seen…
        </span>
      </div>
    );
  }
  if (witness.isError) return <ErrorNotice error={witness.error} title="The witness could not run" />;
  const n = witnessNotice(witness.data, (iso) => new Date(iso).toLocaleString());
  return (
    <div
      className={`witness witness-${n.tone}`}
      role={n.tone === 'bad' ? 'alert' : 'status'}
      data-testid="witness"
      data-status={witness.data.status}
    >
      <span className="witness-icon" aria-hidden>
        {n.tone === 'bad' ? '⚠' : n.tone === 'ok' ? '✓' : n.tone === 'info' ? '◆' : '!'}
      </span>
      <div className="witness-body">
        <strong className="witness-title">{n.title}</strong>
        <span className="witness-detail">{n.detail}</span>
      </div>
    </div>
  );
}

function ChainState({
  verify,
  pending,
}: {
  verify: { ok: boolean; size: number; head: string; firstBad?: { seq: number; reason: string } } | undefined;
  pending: boolean;
}) {
  if (pending || verify === undefined) return <span className="chain">Verifying chain…</span>;
  if (!verify.ok) {
    return (
      <span className="chain bad" data-testid="chain-state">
        Chain broken
        {verify.firstBad !== undefined ? ` at #${verify.firstBad.seq}: ${verify.firstBad.reason}` : ''}
      </span>
    );
  }
  return (
    <span className="chain ok" data-testid="chain-state" title={`head ${verify.head}`}>
      ✓ Chain verified by the host · {verify.size} entries · head <code>{verify.head.slice(0, 12)}</code>
    </span>
  );
}

/** The summary with the current plan's hash marked, so its plan, approve and apply entries stand out. */
function Summary({ text, highlight }: { text: string; highlight: string | undefined }) {
  if (highlight === undefined || !text.includes(highlight)) return <>{text}</>;
  const [head, ...rest] = text.split(highlight);
  return (
    <>
      {head}
      <mark className="hash">{highlight}</mark>
      {rest.join(highlight)}
    </>
  );
}
