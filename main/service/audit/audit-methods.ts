import { OpError } from '../../common/contract/errors.js';
import type {
  AuditCheckpointResponse,
  AuditConsistencyResponse,
  AuditExportResponse,
  AuditListRequest,
  AuditListResponse,
  AuditPayloadResponse,
  AuditProveResponse,
  AuditVerifyResponse,
  AuditHead,
} from '../../common/contract/payloads.js';
import type { Checkpointer } from './checkpointer.js';
import type { AuditLog } from './log.js';

const EXPORT_PAGE = 1000;

/** The Manager1 audit methods over the log and its checkpointer (the core wires these to D-Bus). */
export function auditMethods(log: AuditLog, checkpointer: Checkpointer) {
  /** The size a proof is for: the one asked for, else the latest checkpoint's (signed now if the log grew). */
  const sizeOrLatest = (size: number | undefined): number => size ?? checkpointer.checkpoint().size;
  const noteAt = (size: number): string | null => log.checkpointAt(size)?.note ?? null;
  const within = (size: number): void => {
    const have = log.treeHead().size;
    if (size > have) {
      throw new OpError('InvalidArgument', `the log has ${have} entries; there is no tree of ${size}`);
    }
  };
  return {
    AuditList: (req: AuditListRequest): AuditListResponse => log.list(req),
    AuditVerify: (req: { checkpoint?: AuditHead | undefined }): Promise<AuditVerifyResponse> =>
      log.verifyOffThread(req.checkpoint),
    AuditCheckpoint: (): AuditCheckpointResponse => checkpointer.describe(checkpointer.checkpoint()),
    AuditProve: (req: { seq: number; size?: number | undefined }): AuditProveResponse => {
      const size = sizeOrLatest(req.size);
      within(size);
      if (req.seq >= size) {
        throw new OpError('InvalidArgument', `entry ${req.seq} is not in the tree of ${size} entries`);
      }
      const { body, proof } = log.inclusionProof(req.seq, size);
      return {
        seq: req.seq,
        size,
        entry: Buffer.from(body, 'utf8').toString('base64'),
        proof: proof.map((h) => h.toString('base64')),
        checkpoint: noteAt(size),
      };
    },
    AuditConsistency: (req: { oldSize: number; newSize?: number | undefined }): AuditConsistencyResponse => {
      const newSize = sizeOrLatest(req.newSize);
      within(newSize);
      if (req.oldSize > newSize) {
        throw new OpError(
          'InvalidArgument',
          `old size ${req.oldSize} is larger than the new size ${newSize}`,
        );
      }
      return {
        oldSize: req.oldSize,
        newSize,
        proof: log.consistencyProof(req.oldSize, newSize).map((h) => h.toString('base64')),
        checkpoint: noteAt(newSize),
      };
    },
    AuditExport: (req: { fromSeq: number; limit?: number | undefined }): AuditExportResponse => ({
      entries: log.exportLeaves(req.fromSeq, req.limit ?? EXPORT_PAGE).map((e) => ({
        seq: e.seq,
        leaf: Buffer.from(e.body, 'utf8').toString('base64'),
      })),
      size: log.head().size,
    }),
    AuditPayload: (req: { hash: string }): AuditPayloadResponse => {
      const info = log.payloadInfo(req.hash);
      if (info.status === 'stored') return { hash: req.hash, status: 'stored', payload: info.payload };
      if (info.status === 'pruned') {
        return { hash: req.hash, status: 'pruned', prunedAt: info.prunedAt, reason: info.reason };
      }
      return { hash: req.hash, status: 'unknown' };
    },
  };
}
