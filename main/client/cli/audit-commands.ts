import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { verifyConsistency, verifyInclusion } from '../../common/transparency/merkle.js';
import {
  openCheckpoint,
  parseVerifierKey,
  type Checkpoint,
  type NoteVerifier,
} from '../../common/transparency/note.js';
import {
  formatConsistencyProof,
  formatInclusionProof,
  parseProofText,
  rootFromExport,
} from '../../common/transparency/proof-text.js';
import { leafHash } from '../../common/transparency/rfc6962.js';
import { systemBusAddress } from '../../common/dbus/system-bus.js';
import { witnessDir, WitnessStore } from '../../common/witness/store.js';
import { AuditHead, AuditKind, OpError } from '../../common/contract/index.js';
import { readDocument } from './document-file.js';
import { EXIT, print, withClient as withCoreClient, writeText, type JsonFlag } from './io.js';
import type { ManagerClient } from '../dbus/manager-client.js';
import { auditListText, auditVerifyText } from './render.js';

const EXPORT_PAGE = 5000;

/**
 * The audit commands are how an admin investigates the log, so they run without the witness check that
 * every other command makes on connect (it would refuse them exactly when they are needed).
 */
function withClient<T>(fn: (c: ManagerClient) => Promise<T>): Promise<T> {
  return withCoreClient(fn, { witness: false });
}

const int = (what: string) => (v: string) => {
  if (!/^(0|[1-9][0-9]*)$/.test(v))
    throw new OpError('InvalidArgument', `${what} must be a non-negative integer, not ${JSON.stringify(v)}`);
  return Number(v);
};

/** Reads a file the user named for an audit command ('-' is stdin); a failure names the file and its role. */
function readInput(file: string, what: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(e);
    throw new OpError('InvalidArgument', `cannot read the ${what}: ${why}`, { file });
  }
}

/** A verifier key given inline (`name+hash+key`) or as a file holding one. */
function loadVerifier(arg: string): NoteVerifier {
  const inline = parseVerifierKey(arg);
  if (inline.ok) return inline.verifier;
  const parsed = parseVerifierKey(readInput(arg, 'verifier key'));
  if (!parsed.ok) throw new OpError('InvalidArgument', `not a verifier key: ${parsed.reason}`, { file: arg });
  return parsed.verifier;
}

/** A signed checkpoint file, opened with the key: every failure names the file and the line. */
function loadCheckpoint(file: string, verifier: NoteVerifier): Checkpoint {
  const opened = openCheckpoint(readInput(file, 'checkpoint'), verifier);
  if (!opened.ok) throw new OpError('AuditCorrupt', `checkpoint rejected: ${opened.reason}`, { file });
  return opened.checkpoint;
}

/** `op-dbus audit ...`: the tamper-evident audit log. */
export function auditCommand(): Command {
  const audit = new Command('audit').description('the tamper-evident audit log');
  audit
    .command('list')
    .description('list entries, newest first')
    .option('--limit <n>', 'at most this many', int('--limit'))
    .option('--before <seq>', 'only entries before this sequence number', int('--before'))
    .option('--since <time>', 'only entries at or after this time (ISO 8601)')
    .option('--until <time>', 'only entries before this time (ISO 8601)')
    .addOption(new Option('--kind <kind>', 'only this kind').choices(AuditKind.options))
    .option('--plugin <name>', 'only this plugin')
    .option('--actor <uid>', 'only entries of this caller uid', int('--actor'))
    .option('--text <words>', 'only entries whose summary contains this')
    .option('--json', 'machine-readable output')
    .action(
      async (
        o: JsonFlag & {
          limit?: number;
          before?: number;
          since?: string;
          until?: string;
          kind?: AuditKind;
          plugin?: string;
          actor?: number;
          text?: string;
        },
      ) => {
        const r = await withClient((c) =>
          c.call('AuditList', {
            ...(o.limit !== undefined ? { limit: o.limit } : {}),
            ...(o.before !== undefined ? { beforeSeq: o.before } : {}),
            ...(o.since !== undefined ? { since: o.since } : {}),
            ...(o.until !== undefined ? { until: o.until } : {}),
            ...(o.kind !== undefined ? { kind: o.kind } : {}),
            ...(o.plugin !== undefined ? { plugin: o.plugin } : {}),
            ...(o.actor !== undefined ? { actor: o.actor } : {}),
            ...(o.text !== undefined ? { text: o.text } : {}),
          }),
        );
        print(o.json, r, auditListText(r));
      },
    );
  audit
    .command('verify')
    .description(
      'check every entry, the chain and the Merkle tree; with --checkpoint, also against a head saved earlier',
    )
    .option(
      '--checkpoint <file>',
      'a JSON file with {size, head}, e.g. the output of an earlier `audit verify --json`',
    )
    .option('--json', 'machine-readable output')
    .action(async (o: JsonFlag & { checkpoint?: string }) => {
      let checkpoint: AuditHead | undefined;
      if (o.checkpoint !== undefined) {
        let value: unknown;
        try {
          value = JSON.parse(readDocument(o.checkpoint, 'checkpoint'));
        } catch (e) {
          if (e instanceof OpError) throw e;
          throw new OpError('InvalidArgument', 'not a checkpoint: not JSON', { file: o.checkpoint });
        }
        const parsed = AuditHead.safeParse(value);
        if (!parsed.success)
          throw new OpError('InvalidArgument', 'not a checkpoint: expected {size, head}', {
            file: o.checkpoint,
          });
        checkpoint = { size: parsed.data.size, head: parsed.data.head };
      }
      const r = await withClient((c) =>
        c.call('AuditVerify', checkpoint !== undefined ? { checkpoint } : {}),
      );
      print(o.json, r, auditVerifyText(r));
      process.exitCode = r.ok ? EXIT.ok : EXIT.error;
    });

  audit
    .command('checkpoint')
    .description(
      'print the latest signed checkpoint (C2SP tlog-checkpoint note); signs a new one if the log grew',
    )
    .option('--json', 'machine-readable output')
    .action(async (o: JsonFlag) => {
      const r = await withClient((c) => c.call('AuditCheckpoint', {}));
      if (o.json === true) print(true, r, '');
      else writeText(process.stdout, r.note);
    });

  audit
    .command('key')
    .description(
      "print the core's checkpoint verifier key (signed-note format), for verify-proof and import-verify",
    )
    .option('--json', 'machine-readable output')
    .action(async (o: JsonFlag) => {
      const r = await withClient((c) => c.call('AuditCheckpoint', {}));
      print(o.json, { verifierKey: r.verifierKey }, r.verifierKey);
    });

  audit
    .command('prove')
    .description('print an inclusion proof of entry <seq> (against the latest checkpoint unless --size)')
    .argument('<seq>', 'the entry', int('<seq>'))
    .option('--size <n>', 'prove inclusion in the tree of this many entries', int('--size'))
    .option('--json', 'machine-readable output')
    .action(async (seq: number, o: JsonFlag & { size?: number }) => {
      const r = await withClient((c) =>
        c.call('AuditProve', { seq, ...(o.size !== undefined ? { size: o.size } : {}) }),
      );
      const text = formatInclusionProof({
        index: r.seq,
        size: r.size,
        entry: Buffer.from(r.entry, 'base64'),
        proof: r.proof.map((h) => Buffer.from(h, 'base64')),
      });
      if (o.json === true) print(true, r, '');
      else writeText(process.stdout, text);
    });

  audit
    .command('consistency')
    .description(
      'print a consistency proof from the tree of <old-size> entries to the latest checkpoint (or --new-size)',
    )
    .argument('<old-size>', 'the size of the older tree', int('<old-size>'))
    .option('--new-size <n>', 'the size of the newer tree', int('--new-size'))
    .option('--json', 'machine-readable output')
    .action(async (oldSize: number, o: JsonFlag & { newSize?: number }) => {
      if (oldSize === 0)
        throw new OpError(
          'InvalidArgument',
          '<old-size> must be at least 1: every log extends the empty one',
        );
      const r = await withClient((c) =>
        c.call('AuditConsistency', { oldSize, ...(o.newSize !== undefined ? { newSize: o.newSize } : {}) }),
      );
      if (o.json === true) print(true, r, '');
      else
        process.stdout.write(
          formatConsistencyProof({
            oldSize: r.oldSize,
            newSize: r.newSize,
            proof: r.proof.map((h) => Buffer.from(h, 'base64')),
          }),
        );
    });

  audit
    .command('verify-proof')
    .description(
      'offline: check a proof from `audit prove` or `audit consistency` against saved signed checkpoints',
    )
    .requiredOption('--proof <file>', 'the proof text (- for stdin)')
    .requiredOption(
      '--checkpoint <file>',
      'the signed checkpoint the proof is for (for consistency: the newer one)',
    )
    .requiredOption('--key <key|file>', 'the verifier key (`op-dbus audit key`)')
    .option('--old-checkpoint <file>', 'for a consistency proof: the older signed checkpoint')
    .option('--json', 'machine-readable output')
    .action((o: JsonFlag & { proof: string; checkpoint: string; key: string; oldCheckpoint?: string }) => {
      const verifier = loadVerifier(o.key);
      const cp = loadCheckpoint(o.checkpoint, verifier);
      const parsed = parseProofText(readInput(o.proof, 'proof'));
      if (!parsed.ok)
        throw new OpError('InvalidArgument', `not a proof: ${parsed.reason}`, { file: o.proof });
      const p = parsed.proof;
      let result: { ok: true } | { ok: false; reason: string };
      let what: string;
      if (p.kind === 'inclusion') {
        what = `entry ${p.index} is in the log of ${cp.size} entries (${cp.origin})`;
        if (p.size !== cp.size) {
          result = {
            ok: false,
            reason: `the proof is for a tree of ${p.size} entries, the checkpoint has ${cp.size}`,
          };
        } else result = verifyInclusion(leafHash(p.entry), p.index, p.size, p.proof, cp.root);
      } else {
        if (o.oldCheckpoint === undefined) {
          throw new OpError('InvalidArgument', 'a consistency proof needs --old-checkpoint too', {
            file: o.proof,
          });
        }
        const old = loadCheckpoint(o.oldCheckpoint, verifier);
        what = `the log of ${cp.size} entries extends the log of ${old.size} entries (${cp.origin})`;
        if (p.oldSize !== old.size || p.newSize !== cp.size) {
          result = {
            ok: false,
            reason: `the proof is from ${p.oldSize} to ${p.newSize} entries, the checkpoints are for ${old.size} and ${cp.size}`,
          };
        } else result = verifyConsistency(p.oldSize, p.newSize, old.root, cp.root, p.proof);
      }
      print(
        o.json,
        { ...result, kind: p.kind },
        result.ok ? `OK: ${what}` : `PROOF REJECTED: ${result.reason}`,
      );
      if (!result.ok) process.exitCode = EXIT.error;
    });

  audit
    .command('export')
    .description(
      'print the log as JSON lines {seq, leaf}: leaf = base64 of the exact bytes hashed as the RFC 6962 leaf',
    )
    .option('--from <seq>', 'start at this entry', int('--from'), 0)
    .option('--to <seq>', 'stop before this entry', int('--to'))
    .option('--json', 'accepted for uniformity: the export is JSON lines either way')
    .action(async (o: { from: number; to?: number }) => {
      await withClient(async (c) => {
        for (let from = o.from; o.to === undefined || from < o.to;) {
          const limit = o.to === undefined ? EXPORT_PAGE : Math.min(EXPORT_PAGE, o.to - from);
          const page = await c.call('AuditExport', { fromSeq: from, limit });
          if (page.entries.length === 0) break;
          process.stdout.write(
            page.entries.map((e) => JSON.stringify({ seq: e.seq, leaf: e.leaf })).join('\n') + '\n',
          );
          from = (page.entries[page.entries.length - 1]?.seq ?? from) + 1;
        }
      });
    });

  audit
    .command('import-verify')
    .description('offline: recompute the Merkle root from an export and compare it with a signed checkpoint')
    .argument('<file>', 'the output of `audit export` (- for stdin)')
    .requiredOption('--checkpoint <file>', 'a signed checkpoint (`audit checkpoint`)')
    .requiredOption('--key <key|file>', 'the verifier key (`op-dbus audit key`)')
    .option('--json', 'machine-readable output')
    .action((file: string, o: JsonFlag & { checkpoint: string; key: string }) => {
      const cp = loadCheckpoint(o.checkpoint, loadVerifier(o.key));
      const r = rootFromExport(readInput(file, 'export'), cp.size);
      if (!r.ok) throw new OpError('AuditCorrupt', `export rejected: ${r.reason}`, { file });
      const ok = r.root.equals(cp.root);
      const out = {
        ok,
        size: cp.size,
        root: r.root.toString('base64'),
        checkpointRoot: cp.root.toString('base64'),
      };
      print(
        o.json,
        out,
        ok
          ? `OK: the first ${cp.size} entries of the export have the checkpoint's root ${out.root}`
          : `MISMATCH: the first ${cp.size} entries of the export have root ${out.root}, the checkpoint ${out.checkpointRoot}`,
      );
      if (!ok) process.exitCode = EXIT.error;
    });

  audit
    .command('witness')
    .description('show (or --forget) the last checkpoint this client saw from the host')
    .option('--forget', 'forget the host (accept its log as it is now at the next connect)')
    .option('--json', 'machine-readable output')
    .action((o: JsonFlag & { forget?: boolean }) => {
      const store = new WitnessStore(witnessDir());
      const endpoint = systemBusAddress();
      if (o.forget === true) {
        store.forget(endpoint);
        print(o.json, { endpoint, forgotten: true }, `Forgot the checkpoint of ${endpoint}.`);
        return;
      }
      const r = store.get(endpoint);
      print(
        o.json,
        r ?? null,
        r === undefined
          ? `No checkpoint seen from ${endpoint} yet.`
          : `${endpoint}: ${r.size} entries, root ${r.root}, key ${r.verifierKey}, seen ${r.seenAt}`,
      );
    });

  audit
    .command('payload')
    .description('print a payload by its hash, or when and why retention pruned it')
    .argument('<hash>', 'the payload_hash of an entry')
    .option('--json', 'machine-readable output')
    .action(async (hash: string, o: JsonFlag) => {
      const r = await withClient((c) => c.call('AuditPayload', { hash }));
      const text =
        r.status === 'stored'
          ? JSON.stringify(r.payload, null, 2)
          : r.status === 'pruned'
            ? `Payload ${hash} was pruned at ${r.prunedAt ?? '?'}: ${r.reason ?? ''}`
            : `No payload ${hash} in this log.`;
      print(o.json, r, text);
      if (r.status !== 'stored') process.exitCode = EXIT.error;
    });

  return audit;
}
