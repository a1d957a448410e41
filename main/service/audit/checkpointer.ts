import { generateKeyPairSync } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { OpError } from '../../common/contract/errors.js';
import type { AuditCheckpointResponse } from '../../common/contract/payloads.js';
import type { AuditLog, RetentionPolicy, StoredCheckpoint } from './log.js';
import { verifyConsistency } from '../../common/transparency/merkle.js';
import {
  checkpointBody,
  encodeSignerKey,
  encodeVerifierKey,
  isKeyName,
  openCheckpoint,
  parseSignerKey,
  parseVerifierKey,
  signerFromSeed,
  signNote,
  type NoteSigner,
  type NoteVerifier,
} from '../../common/transparency/note.js';

/** Options of the checkpointer. */
export interface CheckpointerOptions {
  /** Where the signing key lives (created 0600 on first start). */
  keyFile: string;
  /** The log's origin (and key name) for a new key; default `op-dbus.audit/<hostname>`. */
  origin?: string;
  /** Sign a checkpoint (and apply retention) this often; 0 or undefined: only on demand. */
  intervalMs?: number;
  retention?: RetentionPolicy;
  /** Where periodic failures are reported. */
  onError?: (e: unknown) => void;
}

/**
 * Signs checkpoints of the audit log (C2SP tlog-checkpoint in a signed note, Ed25519) on demand and
 * at an interval, and refuses to sign one that is not consistent with the last one it signed.
 */
export class Checkpointer {
  private timer: NodeJS.Timeout | undefined;
  private readonly verifier: NoteVerifier;

  private constructor(
    private readonly log: AuditLog,
    private readonly signer: NoteSigner,
    private readonly o: CheckpointerOptions,
  ) {
    const parsed = parseVerifierKey(encodeVerifierKey(signer));
    if (!parsed.ok) throw new OpError('Internal', `own verifier key: ${parsed.reason}`);
    this.verifier = parsed.verifier;
  }

  /** Loads the signing key (creating it on first start) and returns the checkpointer. */
  static open(log: AuditLog, o: CheckpointerOptions): Checkpointer {
    return new Checkpointer(log, loadOrCreateKey(o.keyFile, o.origin ?? defaultOrigin()), o);
  }

  /** The log's origin, which is also the key's name. */
  get origin(): string {
    return this.signer.name;
  }

  /** The public key in the signed-note verifier key format. */
  get verifierKey(): string {
    return encodeVerifierKey(this.signer);
  }

  /** Starts the periodic checkpoint and retention (the timer never keeps the process alive). */
  start(): void {
    const every = this.o.intervalMs ?? 0;
    if (every <= 0 || this.timer !== undefined) return;
    this.timer = setInterval(() => {
      try {
        this.checkpoint();
        if (this.o.retention !== undefined) this.log.prunePayloads(this.o.retention);
      } catch (e) {
        this.o.onError?.(e);
      }
    }, every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * The checkpoint of the log as it is now: the last one signed if the log has not grown, else a new
   * one, signed only after a consistency proof from the previous one verifies.
   */
  checkpoint(): StoredCheckpoint {
    const { size, root } = this.log.treeHead();
    const prev = this.log.latestCheckpoint();
    if (prev !== undefined) {
      this.checkOwn(prev);
      if (prev.size > size) {
        throw new OpError(
          'AuditCorrupt',
          `the log has ${size} entries but a checkpoint of ${prev.size} entries was signed at ${prev.time}: entries were removed`,
        );
      }
      if (prev.size === size) {
        if (!prev.root.equals(root)) {
          throw new OpError(
            'AuditCorrupt',
            `the tree of ${size} entries no longer has the root signed at ${prev.time}: history was rewritten`,
          );
        }
        return prev;
      }
      if (prev.size > 0) {
        const proof = this.log.consistencyProof(prev.size, size);
        const ok = verifyConsistency(prev.size, size, prev.root, root, proof);
        if (!ok.ok) {
          throw new OpError(
            'AuditCorrupt',
            `refusing to sign a checkpoint of ${size} entries: it is not consistent with the checkpoint of ${prev.size} signed at ${prev.time} (${ok.reason}): history was rewritten`,
          );
        }
      }
    }
    const note = signNote(checkpointBody({ origin: this.origin, size, root }), this.signer);
    const cp: StoredCheckpoint = { size, root, note, time: new Date().toISOString() };
    this.log.saveCheckpoint(cp);
    return cp;
  }

  /** The checkpoint as Manager1 returns it. */
  describe(cp: StoredCheckpoint): AuditCheckpointResponse {
    return {
      note: cp.note,
      origin: this.origin,
      size: cp.size,
      root: cp.root.toString('base64'),
      verifierKey: this.verifierKey,
      time: cp.time,
    };
  }

  /** A stored checkpoint must be one this key signed, for the size and root it is stored with. */
  private checkOwn(cp: StoredCheckpoint): void {
    const opened = openCheckpoint(cp.note, this.verifier);
    if (!opened.ok) {
      throw new OpError(
        'AuditCorrupt',
        `the stored checkpoint of ${cp.size} entries is not valid: ${opened.reason}`,
      );
    }
    if (opened.checkpoint.size !== cp.size || !opened.checkpoint.root.equals(cp.root)) {
      throw new OpError(
        'AuditCorrupt',
        `the stored checkpoint of ${cp.size} entries does not say what its row says (size or root altered)`,
      );
    }
  }
}

/** `op-dbus.audit/<hostname>`, with characters a key name cannot hold replaced. */
function defaultOrigin(): string {
  return `op-dbus.audit/${hostname().replace(/[\s+\u2014]/gu, '-') || 'localhost'}`;
}

/** Reads the signer key, or generates one and writes it (0600, fsynced, atomically). */
function loadOrCreateKey(file: string, origin: string): NoteSigner {
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new OpError('Internal', `cannot read the audit signing key: ${String(e)}`, { file });
    }
  }
  if (text !== undefined) {
    const mode = statSync(file).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new OpError(
        'Internal',
        `the audit signing key is readable by others (mode ${mode.toString(8)}); chmod 600 it`,
        {
          file,
        },
      );
    }
    const parsed = parseSignerKey(text);
    if (!parsed.ok) throw new OpError('Internal', `the audit signing key: ${parsed.reason}`, { file });
    return parsed.signer;
  }
  if (!isKeyName(origin))
    throw new OpError('InvalidArgument', `audit origin ${JSON.stringify(origin)} is not a valid key name`);
  const { privateKey } = generateKeyPairSync('ed25519');
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  const signer = signerFromSeed(origin, der.subarray(der.length - 32));
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${encodeSignerKey(signer)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  return signer;
}
