import { useEffect, useState } from 'react';
import type { ApplyProgress, Plan } from '../../../main/common/contract/index.js';
import { readableError } from '../core/core-client.js';
import { useApplyMutation, useApproveMutation, useCancelMutation } from '../core/core-queries.js';
import { ErrorNotice } from '../shell/error-notice.js';
import { useConsoleStore } from '../state/console-store.js';
import { ApplyOutcome } from './apply-outcome.js';
import { IrreversibleConfirmation } from './irreversible-confirmation.js';
import { confirmationOf, unconfirmed } from './irreversible.js';

interface ApplyPanelProps {
  plan: Plan;
  outdated: boolean;
  onReplan: () => void;
  replanning: boolean;
}

/**
 * Approve (exactly the hash shown), confirm each irreversible change, then Apply, with the core's
 * progress as it streams in and a Cancel while it runs.
 */
export function ApplyPanel({ plan, outdated, onReplan, replanning }: ApplyPanelProps) {
  const approval = useConsoleStore((s) => s.approval);
  const applyResult = useConsoleStore((s) => s.applyResult);
  const progress = useConsoleStore((s) => s.progress);
  const staleMessage = useConsoleStore((s) => s.staleMessage);
  const approve = useApproveMutation();
  const apply = useApplyMutation();
  const cancel = useCancelMutation();
  const [confirmed, setConfirmed] = useState<ReadonlySet<string>>(new Set());
  const { reset: resetApprove } = approve;
  const { reset: resetApply } = apply;
  const { reset: resetCancel } = cancel;

  // a new plan starts a new approval: errors and confirmations of the previous plan no longer apply
  useEffect(() => {
    resetApprove();
    resetApply();
    resetCancel();
    setConfirmed(new Set());
  }, [plan.id, resetApprove, resetApply, resetCancel]);

  const missing = unconfirmed(plan.irreversible, confirmed);
  // the core forgets a plan whose apply was cancelled: only a new plan can be applied
  const cancelled = apply.error !== null && readableError(apply.error).code === 'Cancelled';
  const canApprove = plan.hasChanges && !outdated && approval === undefined && staleMessage === undefined;
  const canApply =
    approval !== undefined &&
    applyResult === undefined &&
    !apply.isPending &&
    staleMessage === undefined &&
    missing.length === 0 &&
    !cancelled;
  const hasIrreversible = plan.irreversible.length > 0;

  return (
    <div className="panel apply-panel">
      <div className="panel-head">Approve and apply</div>
      {staleMessage !== undefined && (
        <div className="notice notice-warning" role="alert" data-testid="stale-plan">
          <strong>This plan is stale.</strong>
          <span className="notice-text">{staleMessage}</span>
          <button
            type="button"
            className="primary"
            onClick={onReplan}
            disabled={replanning}
            data-testid="replan-button"
          >
            {replanning ? 'Planning…' : 'Plan again'}
          </button>
        </div>
      )}
      <ol className="steps">
        <li className={approval !== undefined ? 'done' : ''}>
          <div className="step-title">1. Approve this exact plan</div>
          {approval === undefined ? (
            <>
              <p className="muted">
                The core records your approval of the hash above in the audit log; Apply refuses any other
                plan.
              </p>
              <button
                type="button"
                className="primary"
                data-testid="approve-button"
                disabled={!canApprove || approve.isPending}
                onClick={() => approve.mutate({ planId: plan.id, hash: plan.hash })}
              >
                {approve.isPending ? 'Approving…' : 'Approve plan'}
              </button>
              {!plan.hasChanges && <span className="muted inline-note">Nothing to apply.</span>}
            </>
          ) : (
            <div className="approved" data-testid="approval">
              <span className="check" aria-hidden>
                ✓
              </span>{' '}
              Approved {new Date(approval.approvedAt).toLocaleTimeString()} · audit #{approval.auditSeq}
              <code className="hash" data-testid="approved-hash">
                {approval.hash}
              </code>
            </div>
          )}
          <ErrorNotice error={approve.error} title="Not approved" />
        </li>
        {hasIrreversible && (
          <li className={missing.length === 0 ? 'done' : ''}>
            <div className="step-title">2. Confirm each irreversible change</div>
            <IrreversibleConfirmation
              irreversible={plan.irreversible}
              confirmed={confirmed}
              onChange={setConfirmed}
              disabled={applyResult !== undefined || apply.isPending}
            />
          </li>
        )}
        <li className={applyResult !== undefined ? 'done' : ''}>
          <div className="step-title">{hasIrreversible ? '3' : '2'}. Apply</div>
          <div className="actions">
            <button
              type="button"
              className="primary danger"
              data-testid="apply-button"
              disabled={!canApply}
              onClick={() =>
                apply.mutate({ planId: plan.id, hash: plan.hash, ...confirmationOf(plan.irreversible) })
              }
            >
              {applyResult !== undefined ? 'Applied' : apply.isPending ? 'Applying…' : 'Apply to host'}
            </button>
            {apply.isPending && (
              <button
                type="button"
                data-testid="cancel-button"
                disabled={cancel.isPending || cancel.data?.cancelled === true}
                onClick={() => cancel.mutate(plan.id)}
              >
                {cancel.isPending || cancel.data?.cancelled === true ? 'Cancelling…' : 'Cancel'}
              </button>
            )}
            {approval !== undefined && missing.length > 0 && (
              <span className="muted" data-testid="apply-waits-for-confirmation">
                Apply waits until you confirm {missing.join(', ')}.
              </span>
            )}
          </div>
          <ProgressList progress={progress} />
          {apply.isPending &&
            (cancel.data?.cancelled === true || progress.some((p) => p.step === 'cancelling')) && (
              <div className="notice notice-warning" role="status" data-testid="apply-cancelling">
                <strong>Cancelling.</strong>
                <span className="notice-text">
                  The core stops at the next step and rolls back what this apply changed.
                </span>
              </div>
            )}
          <ErrorNotice error={cancel.error} title="Could not cancel" />
          <ApplyOutcome
            result={applyResult}
            error={staleMessage === undefined ? apply.error : null}
            onReplan={onReplan}
            replanning={replanning}
          />
        </li>
      </ol>
    </div>
  );
}

function ProgressList({ progress }: { progress: ApplyProgress[] }) {
  if (progress.length === 0) return null;
  return (
    <ul className="progress" data-testid="apply-progress" aria-live="polite">
      {progress.map((p, i) => (
        <li key={i} className={`step-${p.step}`}>
          <span className="badge">{p.step}</span> {p.message}
        </li>
      ))}
    </ul>
  );
}
