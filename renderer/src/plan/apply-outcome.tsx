import { OpError, type ApplyResponse } from '../../../main/common/contract/index.js';
import { readableError } from '../core/core-client.js';
import { ErrorNotice } from '../shell/error-notice.js';
import { irreversibleRanOf } from './irreversible.js';

interface ApplyOutcomeProps {
  result: ApplyResponse | undefined;
  error: unknown;
  onReplan: () => void;
  replanning: boolean;
}

/** How the apply ended: applied, cancelled and rolled back, refused, or failed. */
export function ApplyOutcome({ result, error, onReplan, replanning }: ApplyOutcomeProps) {
  if (result !== undefined) return <Applied result={result} />;
  if (error === null || error === undefined) return null;
  const { code } = readableError(error);
  if (code === 'Cancelled') return <Cancelled error={error} onReplan={onReplan} replanning={replanning} />;
  if (code === 'NotConfirmed') {
    return (
      <ErrorNotice error={error} title="Refused by the core: not every irreversible change was confirmed" />
    );
  }
  return <ErrorNotice error={error} title="Not applied" />;
}

function Applied({ result }: { result: ApplyResponse }) {
  return (
    <div className="notice notice-success" role="status" data-testid="apply-result">
      <strong>{result.outcome === 'applied' ? 'Applied and verified.' : 'Nothing to do.'}</strong>
      <span className="notice-text">
        {result.plugins
          .map((p) => `${p.plugin}: ${p.changed} changed${p.verified ? ', verified' : ''}`)
          .join('; ')}{' '}
        · audit #{result.auditSeq}
      </span>
      {result.confirmedIrreversible.length > 0 && (
        <span className="notice-text" data-testid="apply-confirmed-irreversible">
          Irreversible, as you confirmed: {result.confirmedIrreversible.join(', ')}
        </span>
      )}
    </div>
  );
}

function Cancelled({
  error,
  onReplan,
  replanning,
}: {
  error: unknown;
  onReplan: () => void;
  replanning: boolean;
}) {
  const ran = irreversibleRanOf(error instanceof OpError ? error.details : undefined);
  return (
    <div className="notice notice-warning" role="alert" data-testid="apply-cancelled">
      <strong>Cancelled and rolled back.</strong>
      <span className="notice-text">{readableError(error).message}</span>
      {ran.length > 0 && (
        <span className="notice-text">
          Irreversible changes had already run and were not undone: {ran.join(', ')}
        </span>
      )}
      <span className="notice-text muted">The core has dropped this plan: plan again to apply.</span>
      <button type="button" className="primary" onClick={onReplan} disabled={replanning}>
        {replanning ? 'Planning…' : 'Plan again'}
      </button>
    </div>
  );
}
