import type { InclusionReport, WitnessReport } from '../../common/contract/index.js';
import { verifyInclusion } from '../../common/transparency/merkle.js';
import { leafHash } from '../../common/transparency/rfc6962.js';

/** What the inclusion check asks of the core: an inclusion proof at a given tree size. */
export interface ProofSource {
  call(
    method: 'AuditProve',
    request: { seq: number; size: number },
  ): Promise<{ seq: number; size: number; entry: string; proof: string[] }>;
}

/**
 * Whether entry seq is in the log the witness accepted: the witness runs first (it checks the
 * core's newest checkpoint against the one it kept, by a consistency proof), then the core's
 * inclusion proof at that checkpoint's size is checked against the checkpoint's root here. A core
 * that rewrote the entry cannot produce a proof that passes; one that lies about the checkpoint is
 * caught by the witness.
 */
export async function verifyEntryInclusion(
  core: ProofSource,
  witness: () => Promise<WitnessReport>,
  seq: number,
): Promise<InclusionReport> {
  const report = await witness();
  if (report.status === 'tampering') {
    return { seq, verified: false, reason: `the witness reports tampering: ${report.reason}` };
  }
  if (report.status === 'not-witnessed') {
    return { seq, verified: false, reason: `no witnessed checkpoint to check against: ${report.reason}` };
  }
  const { size, root, seenAt } = report.checkpoint;
  const against = { size, root, seenAt };
  if (seq >= size) {
    return {
      seq,
      verified: false,
      ...against,
      reason: `entry ${seq} is newer than the witnessed checkpoint (${size} entries); verify it after the next checkpoint`,
    };
  }
  const p = await core.call('AuditProve', { seq, size });
  if (p.size !== size || p.seq !== seq) {
    return { seq, verified: false, ...against, reason: `the core answered for entry ${p.seq} of ${p.size}` };
  }
  const result = verifyInclusion(
    leafHash(Buffer.from(p.entry, 'base64')),
    seq,
    size,
    p.proof.map((h) => Buffer.from(h, 'base64')),
    Buffer.from(root, 'base64'),
  );
  return result.ok
    ? { seq, verified: true, ...against }
    : { seq, verified: false, ...against, reason: `the inclusion proof does not verify: ${result.reason}` };
}
