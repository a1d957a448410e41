import { useMutation } from '@tanstack/react-query';
import { useCore } from '../core/core-context.js';
import { readableError } from '../core/core-client.js';

/**
 * "Verify inclusion" for one entry: the relay (the admin's own process) checks the core's inclusion
 * proof against the checkpoint the witness last accepted, so a rewritten entry shows here even when
 * the core itself says all is well.
 */
export function InclusionCheck({ seq }: { seq: number }) {
  const core = useCore();
  const check = useMutation({ mutationFn: () => core.callRelay('VerifyInclusion', { seq }) });
  if (check.data !== undefined) {
    const r = check.data;
    return r.verified ? (
      <span
        className="inclusion ok"
        data-testid="inclusion-result"
        data-verified="true"
        title={`root ${r.root ?? ''} witnessed ${r.seenAt ?? ''}`}
      >
        ✓ in the witnessed log of {r.size} entries
      </span>
    ) : (
      <span className="inclusion bad" data-testid="inclusion-result" data-verified="false">
        ✗ not verified: {r.reason}
      </span>
    );
  }
  if (check.error !== null) {
    return (
      <span className="inclusion bad" data-testid="inclusion-result" data-verified="false">
        ✗ {readableError(check.error).line}
      </span>
    );
  }
  return (
    <button
      type="button"
      className="link-button"
      data-testid="verify-inclusion"
      aria-label={`Verify that entry ${seq} is in the witnessed log`}
      disabled={check.isPending}
      onClick={() => check.mutate()}
    >
      {check.isPending ? 'Verifying…' : 'Verify inclusion'}
    </button>
  );
}
