import { OpError } from '../../common/contract/errors.js';

/** Why a storage operation was refused or failed. */
export type StorageErrorReason =
  'ReadOnly' | 'NoSpace' | 'NotADirectory' | 'Conflict' | 'BtrfsCommandFailed' | 'SnapshotNotFound' | 'Io';

/**
 * A storage error: the reason, a message naming the path and what to do, and the path in `where.file`.
 * A bad data dir (read-only, full, not a directory, in the way) is the caller's input: InvalidArgument.
 */
export class StorageError extends OpError {
  readonly reason: StorageErrorReason;

  constructor(reason: StorageErrorReason, message: string, path: string, cause?: unknown) {
    super(
      reason === 'BtrfsCommandFailed' || reason === 'Io' ? 'Internal' : 'InvalidArgument',
      message,
      { file: path },
      {
        reason,
      },
    );
    this.name = 'StorageError';
    this.reason = reason;
    if (cause !== undefined) this.cause = cause;
  }
}

/** The errno name of a Node system error, if it is one. */
export function errnoCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A system error while writing under `path` as a StorageError: EROFS and ENOSPC get their own reasons. */
export function storageErrorFrom(e: unknown, what: string, path: string): StorageError {
  if (e instanceof StorageError) return e;
  const code = errnoCode(e);
  const detail = e instanceof Error ? e.message : String(e);
  if (code === 'EROFS')
    return new StorageError('ReadOnly', `${what}: ${path} is on a read-only filesystem`, path, e);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new StorageError(
      'NoSpace',
      `${what}: no space left on the filesystem of ${path} (${detail})`,
      path,
      e,
    );
  }
  return new StorageError('Io', `${what}: ${detail}`, path, e);
}
