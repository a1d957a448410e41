import type { DriftResponse } from '../../../main/common/contract/index.js';
import { useDrift } from '../core/core-queries.js';
import { ErrorNotice } from '../shell/error-notice.js';
import { ConvergeControl } from './converge-control.js';
import { driftHeadline, driftRows } from './drift-rows.js';

/**
 * The host against the last applied document (DESIGN.md section 4: drift is reported on its own),
 * kept apart from the plan being reviewed, with a Converge that re-applies that document.
 */
export function DriftPanel() {
  const drift = useDrift();
  const r = drift.data;
  return (
    <div className="panel drift-panel" data-testid="drift-panel">
      <div className="panel-head drift-head">
        <span>Drift from the last applied plan · apart from any planned change</span>
        <button
          type="button"
          className="head-button"
          data-testid="drift-refresh"
          disabled={drift.isFetching}
          onClick={() => void drift.refetch()}
        >
          {drift.isFetching ? 'Checking…' : 'Check again'}
        </button>
      </div>
      <ErrorNotice error={drift.error} title="Could not compare the host with the applied plan" />
      {drift.isPending && <div className="panel-empty">Comparing the host with the last applied plan…</div>}
      {r !== undefined && (
        <div className="drift-body">
          <DriftState drift={r} />
          {r.planHash !== null && <ConvergeControl drift={r} />}
        </div>
      )}
    </div>
  );
}

function DriftState({ drift }: { drift: DriftResponse }) {
  const rows = driftRows(drift);
  const verdict = drift.planHash === null ? 'nothing-applied' : drift.inSync ? 'in-sync' : 'drifted';
  return (
    <div className="drift-state">
      <div className={`drift-verdict ${verdict}`} data-testid="drift-verdict" data-verdict={verdict}>
        <span aria-hidden>{verdict === 'drifted' ? '⚠' : verdict === 'in-sync' ? '✓' : '·'}</span>{' '}
        {driftHeadline(drift)}
        {drift.planHash !== null && (
          <>
            {' '}
            <code data-testid="drift-plan-hash">{drift.planHash}</code>{' '}
            <span className="muted">
              (applied {drift.appliedAt !== null ? new Date(drift.appliedAt).toLocaleString() : '?'}
              {drift.file !== undefined ? ` from ${drift.file}` : ''})
            </span>
          </>
        )}
      </div>
      {rows.length > 0 && (
        <table className="drift-table">
          <thead>
            <tr>
              <th>Plugin</th>
              <th>Value</th>
              <th>Applied</th>
              <th>Host has now</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((d) => (
              <tr key={`${d.plugin} ${d.path}`} data-testid="drift-row" data-path={d.path}>
                <td className="mono">{d.plugin}</td>
                <td className="mono">{d.path}</td>
                <td className="values">
                  <span className="applied">{d.applied}</span>
                </td>
                <td className="values">
                  <span className="host">{d.host}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
