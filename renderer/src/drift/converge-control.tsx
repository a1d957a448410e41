import { useEffect, useRef, useState } from 'react';
import type { ApplyProgress, ConvergeResponse, DriftResponse } from '../../../main/common/contract/index.js';
import { readableError } from '../core/core-client.js';
import { useCore } from '../core/core-context.js';
import { useConvergeMutation } from '../core/core-queries.js';
import { IrreversibleConfirmation } from '../plan/irreversible-confirmation.js';
import { confirmationOf, unconfirmed } from '../plan/irreversible.js';
import { changeRows } from '../plan/plan-rows.js';
import { ErrorNotice } from '../shell/error-notice.js';
import { convergeSteps } from './converge-progress.js';

/**
 * Converge in two steps, as an apply: a dry run says what re-applying the last applied document
 * would change and which of those changes are irreversible; the admin confirms each, then the core
 * (polkit's apply check) re-applies it.
 */
export function ConvergeControl({ drift }: { drift: DriftResponse }) {
  const review = useConvergeMutation();
  const converge = useConvergeMutation();
  const [confirmed, setConfirmed] = useState<ReadonlySet<string>>(new Set());
  const reviewData = review.data;
  // the core's ApplyProgress while the converge runs (its plan id is known only from the answer)
  const core = useCore();
  const [events, setEvents] = useState<ApplyProgress[]>([]);
  const [reviewedHash, setReviewedHash] = useState<string | undefined>(undefined);
  const listening = useRef(false);
  useEffect(
    () =>
      core.transport.onSignal('ApplyProgress', (p) => {
        if (listening.current) setEvents((all) => [...all, p]);
      }),
    [core],
  );
  const steps = convergeSteps(events, reviewedHash);

  const startReview = (): void => {
    converge.reset();
    setConfirmed(new Set());
    review.mutate({ dryRun: true });
  };

  if (reviewData === undefined) {
    return (
      <div className="converge">
        <button
          type="button"
          className="primary"
          data-testid="converge-button"
          disabled={drift.inSync || review.isPending}
          onClick={startReview}
        >
          {review.isPending ? 'Planning the converge…' : 'Converge…'}
        </button>
        <ErrorNotice error={review.error} title="Could not plan the converge" />
        <ConvergeSteps steps={steps} />
        <ConvergeOutcome result={converge.data} error={converge.error} />
      </div>
    );
  }

  const reviewed = reviewData.plan;
  const missing = unconfirmed(reviewed.irreversible, confirmed);
  const changes = changeRows(reviewed).length;
  return (
    <div className="converge converge-review" data-testid="converge-review">
      <p>
        Converging re-applies applied plan <code>{reviewData.planHash}</code>:{' '}
        <strong>
          {changes} change{changes === 1 ? '' : 's'}
        </strong>{' '}
        to the values above, audited as a converge of that plan.
      </p>
      {reviewed.irreversible.length > 0 && (
        <IrreversibleConfirmation
          irreversible={reviewed.irreversible}
          confirmed={confirmed}
          onChange={setConfirmed}
          disabled={converge.isPending}
        />
      )}
      <div className="actions">
        <button
          type="button"
          className="primary danger"
          data-testid="converge-now"
          disabled={missing.length > 0 || converge.isPending}
          onClick={() => {
            setEvents([]);
            setReviewedHash(reviewed.hash);
            listening.current = true;
            converge.mutate(confirmationOf(reviewed.irreversible), {
              onSettled: () => {
                listening.current = false;
                review.reset();
              },
            });
          }}
        >
          {converge.isPending ? 'Converging…' : 'Converge now'}
        </button>
        <button type="button" disabled={converge.isPending} onClick={() => review.reset()}>
          Back
        </button>
      </div>
      {converge.isPending && <ConvergeSteps steps={steps} />}
    </div>
  );
}

/** Each step of the running (or last) converge as the core streamed it: plugin, step, what happened. */
function ConvergeSteps({ steps }: { steps: ApplyProgress[] }) {
  if (steps.length === 0) return null;
  return (
    <ul
      className="progress converge-progress"
      data-testid="converge-progress"
      aria-live="polite"
      aria-label="Converge progress"
    >
      {steps.map((p, i) => (
        <li
          key={i}
          className={`step-${p.step}`}
          data-testid="converge-step"
          data-step={p.step}
          data-plugin={p.plugin ?? ''}
        >
          <span className="badge">{p.step}</span> {p.plugin !== null && <strong>{p.plugin}: </strong>}
          {p.message}
        </li>
      ))}
    </ul>
  );
}

function ConvergeOutcome({ result, error }: { result: ConvergeResponse | undefined; error: unknown }) {
  if (error !== null && error !== undefined) {
    return (
      <ErrorNotice
        error={error}
        title={
          readableError(error).code === 'NotConfirmed'
            ? 'Not converged: the core refused irreversible changes that were not confirmed'
            : 'Not converged'
        }
      />
    );
  }
  if (result === undefined) return null;
  return (
    <div className="notice notice-success" role="status" data-testid="converge-result">
      <strong>
        {result.apply === null ? 'Already in sync: nothing to converge.' : 'Converged and verified.'}
      </strong>
      {result.apply !== null && (
        <span className="notice-text">
          {result.apply.plugins.map((p) => `${p.plugin}: ${p.changed} changed`).join('; ')} · audit #
          {result.apply.auditSeq}
        </span>
      )}
    </div>
  );
}
