import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { OpError } from '../contract/index.js';

// The witness's records on disk. The client's witness reads and writes them (main/client/witness);
// the development host forgets its own host's record on `sandbox down --wipe`, when the user asked
// for a new host. Both must name the same file for the same endpoint, so the layout lives here once.

/** What the witness keeps per host. */
export interface WitnessRecord {
  endpoint: string;
  verifierKey: string;
  origin: string;
  size: number;
  /** Base64 root hash. */
  root: string;
  note: string;
  seenAt: string;
}

/** The user's state directory for the witness: $XDG_STATE_HOME/op-dbus or ~/.local/state/op-dbus. */
export function witnessDir(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env['XDG_STATE_HOME'] !== undefined && env['XDG_STATE_HOME'] !== ''
      ? env['XDG_STATE_HOME']
      : join(homedir(), '.local', 'state');
  return join(base, 'op-dbus', 'witness');
}

/** Keeps one record per host in a small JSON file named by a hash of the endpoint. */
export class WitnessStore {
  constructor(readonly dir: string) {}

  private fileFor(endpoint: string): string {
    return join(this.dir, `${createHash('sha256').update(endpoint).digest('hex').slice(0, 32)}.json`);
  }

  /** The record for this host, if any; a damaged record is an error naming the file. */
  get(endpoint: string): WitnessRecord | undefined {
    const file = this.fileFor(endpoint);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new OpError('Internal', `witness: cannot read ${file}: ${String(e)}`, { file });
    }
    try {
      const r = JSON.parse(text) as WitnessRecord;
      if (r.endpoint !== endpoint || typeof r.size !== 'number' || typeof r.note !== 'string')
        throw new Error('fields missing');
      return r;
    } catch (e) {
      throw new OpError(
        'Internal',
        `witness: ${file} is not a witness record (${String(e)}); remove it to start over`,
        { file },
      );
    }
  }

  /** Saves atomically (write, then rename). */
  put(record: WitnessRecord): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = this.fileFor(record.endpoint);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, file);
  }

  /** Forgets a host (after a rewrite the admin has looked into, a deliberate new key, or a wiped development host). */
  forget(endpoint: string): void {
    rmSync(this.fileFor(endpoint), { force: true });
  }
}
