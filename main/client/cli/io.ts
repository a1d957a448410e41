import { OpError } from '../../common/contract/index.js';
import { printable, printableJson } from '../../common/text/printable.js';
import { ManagerClient } from '../dbus/manager-client.js';
import { witnessDir, WitnessStore } from '../../common/witness/store.js';
import { witnessCheck } from '../witness/witness.js';

/** Exit codes as Terraform's -detailed-exitcode: 0 nothing to change, 2 changes (or drift), 1 error. */
export const EXIT = { ok: 0, error: 1, changes: 2 } as const;

export interface JsonFlag {
  json?: boolean;
}

/**
 * Prints data as JSON with --json, else as text for a person. Either way no character of it acts on the
 * terminal: text from the core or a document is data, never escape sequences (see printable).
 */
export function print(json: boolean | undefined, data: unknown, text: string): void {
  process.stdout.write(
    (json === true ? printableJson(JSON.stringify(data, null, 2)) : printable(text, 'lines')) + '\n',
  );
}

/** Writes text for a person (lines of it) to stdout or stderr, with terminal controls made visible. */
export function writeText(stream: NodeJS.WritableStream, text: string): void {
  stream.write(printable(text, 'lines'));
}

/** Connects to the core, runs fn, and always disconnects. */
export async function withClient<T>(
  fn: (c: ManagerClient) => Promise<T>,
  opts: { witness?: boolean } = {},
): Promise<T> {
  const client = await ManagerClient.connect();
  try {
    if (opts.witness !== false) await witnessOnConnect(client);
    return await fn(client);
  } finally {
    client.close();
  }
}

/**
 * The witness on every connect (DESIGN.md section 5): tampering is an error. A user with no writable
 * state dir (a system account whose HOME does not exist) is not witnessed, silently: the command
 * itself still runs, and `op-dbus audit witness` shows there is no record. Anything else that stops
 * the check is a warning. OP_DBUS_WITNESS=off skips it.
 */
async function witnessOnConnect(client: ManagerClient): Promise<void> {
  if (process.env['OP_DBUS_WITNESS'] === 'off') return;
  try {
    await witnessCheck(client, new WitnessStore(witnessDir()), client.endpoint);
  } catch (e) {
    if (e instanceof OpError && e.code === 'AuditCorrupt') throw e;
    const errno = (e as NodeJS.ErrnoException).code;
    if (errno === 'EACCES' || errno === 'ENOENT' || errno === 'EROFS' || errno === 'EPERM') return;
    const why = e instanceof Error ? e.message : String(e);
    writeText(
      process.stderr,
      `op-dbus: warning: the audit witness could not run (${why}); this host's log is not witnessed\n`,
    );
  }
}
