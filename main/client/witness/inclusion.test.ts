import { describe, expect, it } from 'vitest';
import type { WitnessReport } from '../../common/contract/index.js';
import { MerkleTree } from '../../common/transparency/merkle.js';
import { leafHash } from '../../common/transparency/rfc6962.js';
import { verifyEntryInclusion, type ProofSource } from './inclusion.js';

const entries = Array.from({ length: 13 }, (_, i) =>
  Buffer.from(JSON.stringify({ seq: i, summary: `entry ${i}` })),
);
const tree = new MerkleTree();
for (const e of entries) tree.append(leafHash(e));

/** A core that answers proofs from its tree; `rewrite` swaps one entry's bytes in its answers. */
function core(rewrite?: { seq: number; entry: Buffer }): ProofSource {
  return {
    call: (_m, { seq, size }) =>
      Promise.resolve({
        seq,
        size,
        entry: (rewrite?.seq === seq ? rewrite.entry : (entries[seq] as Buffer)).toString('base64'),
        proof: tree.inclusionProof(seq, size).map((h) => h.toString('base64')),
      }),
  };
}
const witnessed =
  (size: number): (() => Promise<WitnessReport>) =>
  () =>
    Promise.resolve({
      status: 'in-sync',
      endpoint: 'unix:path=/run/test',
      checkpoint: { size, root: tree.root(size).toString('base64'), seenAt: '2026-12-03T12:00:00Z' },
    });

describe('verifying an entry against the witnessed checkpoint', () => {
  it('verifies every entry of the witnessed tree, at that tree size', async () => {
    for (const seq of [0, 5, 11]) {
      expect(await verifyEntryInclusion(core(), witnessed(12), seq)).toMatchObject({
        seq,
        verified: true,
        size: 12,
      });
    }
  });

  it('refuses a rewritten entry, an entry past the checkpoint, and any answer while the witness reports tampering', async () => {
    const forged = await verifyEntryInclusion(
      core({ seq: 5, entry: Buffer.from('{"seq":5,"summary":"nothing happened"}') }),
      witnessed(12),
      5,
    );
    expect(forged).toMatchObject({ verified: false, reason: expect.stringMatching(/does not verify/) });
    expect(await verifyEntryInclusion(core(), witnessed(12), 12)).toMatchObject({
      verified: false,
      reason: expect.stringMatching(/newer than the witnessed checkpoint \(12 entries\)/),
    });
    const tampering = (): Promise<WitnessReport> =>
      Promise.resolve({ status: 'tampering', endpoint: 'x', reason: 'history was rewritten' });
    expect(await verifyEntryInclusion(core(), tampering, 1)).toMatchObject({
      verified: false,
      reason: expect.stringMatching(/tampering/),
    });
  });
});
