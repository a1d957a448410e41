import { verifyConsistency } from '../../common/transparency/merkle.js';
import { openCheckpoint, parseVerifierKey, strictBase64 } from '../../common/transparency/note.js';
import { witnessDir, WitnessStore, type WitnessRecord } from '../../common/witness/store.js';
import {
  BUS_NAME,
  OpError,
  type AuditCheckpointResponse,
  type WitnessReport,
} from '../../common/contract/index.js';
import type { ManagerClient } from '../dbus/manager-client.js';
import { witnessReport } from './witness-report.js';

/**
 * The witness (DESIGN.md section 5): a key on the host cannot prove anything to that host's root, so
 * the client keeps the last checkpoint it saw from each host and, on every connect, demands a
 * consistency proof from it to the host's current checkpoint. A host is the bus the client talks to
 * (its address); the record also pins the host's signing key, so a new key is reported too.
 */

/** The outcome of one witness check. */
export type WitnessOutcome =
  | { status: 'first-seen' | 'unchanged' | 'consistent'; record: WitnessRecord; previous?: WitnessRecord }
  | { status: 'skipped'; reason: string };

/** Tampering detected: the message says what, where, and how to move on. */
function tampered(endpoint: string, what: string, previous: WitnessRecord | undefined): OpError {
  const since =
    previous !== undefined
      ? ` (last checkpoint seen ${previous.seenAt}: ${previous.size} entries, root ${previous.root})`
      : '';
  return new OpError(
    'AuditCorrupt',
    `AUDIT LOG TAMPERING on ${endpoint}: ${what}${since}. If you have investigated and accept the host's log as it is now, run \`op-dbus audit witness --forget\`; to run one command anyway, set OP_DBUS_WITNESS=off`,
    { dbus: { service: BUS_NAME } },
    { witness: 'tampered', endpoint, what, previous },
  );
}

/**
 * Asks the core for its checkpoint, checks the signature, and checks that it extends the last one this
 * client saw from the host (a consistency proof). Throws AuditCorrupt on any sign of a rewrite; saves the
 * new checkpoint otherwise.
 */
export async function witnessCheck(
  client: ManagerClient,
  store: WitnessStore,
  endpoint: string,
): Promise<WitnessOutcome> {
  let cp: AuditCheckpointResponse;
  const previous = store.get(endpoint);
  try {
    cp = await client.call('AuditCheckpoint', {});
  } catch (e) {
    if (e instanceof OpError && e.code === 'AuditCorrupt') {
      throw tampered(endpoint, `the core refuses to sign a checkpoint: ${e.message}`, previous);
    }
    if (e instanceof OpError && (e.code === 'NotAuthorized' || e.code === 'DBusCallFailed')) {
      return { status: 'skipped', reason: e.message };
    }
    throw e;
  }
  const key = parseVerifierKey(cp.verifierKey);
  if (!key.ok) throw tampered(endpoint, `the core's verifier key is not valid: ${key.reason}`, previous);
  const opened = openCheckpoint(cp.note, key.verifier);
  if (!opened.ok)
    throw tampered(endpoint, `the core's checkpoint does not verify: ${opened.reason}`, previous);
  const now = opened.checkpoint;
  const record: WitnessRecord = {
    endpoint,
    verifierKey: cp.verifierKey,
    origin: now.origin,
    size: now.size,
    root: now.root.toString('base64'),
    note: cp.note,
    seenAt: new Date().toISOString(),
  };
  if (previous === undefined) {
    store.put(record);
    return { status: 'first-seen', record };
  }
  if (previous.verifierKey !== cp.verifierKey) {
    throw tampered(
      endpoint,
      `the core now signs with another key (${cp.verifierKey}, was ${previous.verifierKey})`,
      previous,
    );
  }
  const oldRoot = strictBase64(previous.root) ?? Buffer.alloc(0);
  if (now.size < previous.size) {
    throw tampered(endpoint, `the log shrank from ${previous.size} to ${now.size} entries`, previous);
  }
  if (now.size === previous.size) {
    if (!now.root.equals(oldRoot)) {
      throw tampered(
        endpoint,
        `the tree of ${now.size} entries has another root than before: history was rewritten`,
        previous,
      );
    }
    return { status: 'unchanged', record: previous };
  }
  if (previous.size > 0) {
    let proof: Buffer[];
    try {
      const r = await client.call('AuditConsistency', { oldSize: previous.size, newSize: now.size });
      proof = r.proof.map((h) => Buffer.from(h, 'base64'));
    } catch (e) {
      if (e instanceof OpError && e.code !== 'AuditCorrupt' && e.code !== 'InvalidArgument') throw e;
      throw tampered(
        endpoint,
        `the core cannot prove its log extends the one seen before: ${e instanceof Error ? e.message : String(e)}`,
        previous,
      );
    }
    const ok = verifyConsistency(previous.size, now.size, oldRoot, now.root, proof);
    if (!ok.ok) {
      throw tampered(
        endpoint,
        `the log of ${now.size} entries is not an extension of the ${previous.size} entries seen before (${ok.reason}): history was rewritten`,
        previous,
      );
    }
  }
  store.put(record);
  return { status: 'consistent', record, previous };
}

/**
 * The witness for a console process (serve, the Electron main): the same store, host identity and
 * OP_DBUS_WITNESS=off switch as the CLI; the outcome becomes a report for the renderer instead of an exit code.
 */
export function witnessReporter(
  client: () => Promise<ManagerClient>,
  env: NodeJS.ProcessEnv = process.env,
): () => Promise<WitnessReport> {
  return async () => {
    const c = await client();
    return witnessReport(() => witnessCheck(c, new WitnessStore(witnessDir(env)), c.endpoint), {
      endpoint: c.endpoint,
      off: env['OP_DBUS_WITNESS'] === 'off',
    });
  };
}
