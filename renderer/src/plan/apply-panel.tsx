import { useEffect } from 'react';
import type { Plan } from '../../../main/common/contract/index.js';
import { useApplyMutation, useApproveMutation } from '../core/core-queries.js';
import { ErrorNotice } from '../shell/error-notice.js';
import { useConsoleStore } from '../state/console-store.js';

interface ApplyPanelProps {
  plan: Plan;
  outdated: boolean;
  onReplan: () => void;
  replanning: boolean;
}

/** Approve (exactly the hash shown) then Apply, with the core's progress as it streams in. */
export function ApplyPanel({ plan, outdated, onReplan, replanning }: ApplyPanelProps) {
  const approval = useConsoleStore((s) => s.approval);
  const applyResult = useConsoleStore((s) => s.applyResult);
  const progress = useConsoleStore((s) => s.progress);
  const staleMessage = useConsoleStore((s) => s.staleMessage);
  const approve = useApproveMutation();
  const apply = useApplyMutation();
  const { reset: resetApprove } = approve;
  const { reset: resetApply } = apply;

  // a new plan starts a new approval: errors of the previous plan's calls no longer apply
  useEffect(() => {
    resetApprove();
    resetApply();
  }, [plan.id, resetApprove, resetApply]);

  const canApprove = plan.hasChanges && !outdated && approval === undefined && staleMessage === undefined;
  const canApply =
    approval !== undefined && applyResult === undefined && !apply.isPending && staleMessage === undefined;
  const applyError = apply.error !== null && staleMessage === undefined ? apply.error : null;

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
        <li className={applyResult !== undefined ? 'done' : ''}>
          <div className="step-title">2. Apply</div>
          <button
            type="button"
            className="primary danger"
            data-testid="apply-button"
            disabled={!canApply}
            onClick={() => apply.mutate({ planId: plan.id, hash: plan.hash })}
          >
            {applyResult !== undefined ? 'Applied' : apply.isPending ? 'Applying…' : 'Apply to host'}
          </button>
          {progress.length > 0 && (
            <ul className="progress" data-testid="apply-progress" aria-live="polite">
              {progress.map((p, i) => (
                <li key={i} className={`step-${p.step}`}>
                  <span className="badge">{p.step}</span> {p.message}
                </li>
              ))}
            </ul>
          )}
          {applyResult !== undefined && (
            <div className="notice notice-success" role="status" data-testid="apply-result">
              <strong>
                {applyResult.outcome === 'applied' ? 'Applied and verified.' : 'Nothing to do.'}
              </strong>
              <span className="notice-text">
                {applyResult.plugins
                  .map((p) => `${p.plugin}: ${p.changed} changed${p.verified ? ', verified' : ''}`)
                  .join('; ')}{' '}
                · audit #{applyResult.auditSeq}
              </span>
            </div>
          )}
          <ErrorNotice error={applyError} title="Not applied" />
        </li>
      </ol>
    </div>
  );
}
