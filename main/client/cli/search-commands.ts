import { Command, Option } from 'commander';
import { AuditKind, OpError, type AuditSearchResponse } from '../../common/contract/index.js';
import { print, withClient, type JsonFlag } from './io.js';

const int = (what: string) => (v: string) => {
  if (!/^(0|[1-9][0-9]*)$/.test(v))
    throw new OpError('InvalidArgument', `${what} must be a non-negative integer, not ${JSON.stringify(v)}`);
  return Number(v);
};

/** `op-dbus audit search "<query>"`: hybrid search over the audit log, each result with how to prove it. */
export function auditSearchCommand(): Command {
  return new Command('search')
    .description(
      'search the audit log by words and by meaning (BM25 and embeddings fused); identifiers match exactly',
    )
    .argument('<query>', 'what to look for, e.g. "when did we open the VPN port?" or "51820"')
    .option('--since <time>', 'only entries at or after this time (ISO 8601)')
    .option('--until <time>', 'only entries before this time (ISO 8601)')
    .addOption(new Option('--kind <kind>', 'only this kind').choices(AuditKind.options))
    .option('--plugin <name>', 'only this plugin')
    .option('--actor <uid>', 'only entries of this caller uid', int('--actor'))
    .option('--limit <n>', 'at most this many results (default 10)', int('--limit'))
    .addOption(
      new Option('--mode <mode>', 'hybrid (default), or lexical (BM25) or semantic alone').choices([
        'hybrid',
        'lexical',
        'semantic',
      ]),
    )
    .option('--json', 'machine-readable output')
    .action(
      async (
        query: string,
        o: JsonFlag & {
          since?: string;
          until?: string;
          kind?: AuditKind;
          plugin?: string;
          actor?: number;
          limit?: number;
          mode?: 'hybrid' | 'lexical' | 'semantic';
        },
      ) => {
        const r = await withClient(
          (c) =>
            c.call('AuditSearch', {
              query,
              ...(o.since !== undefined ? { since: o.since } : {}),
              ...(o.until !== undefined ? { until: o.until } : {}),
              ...(o.kind !== undefined ? { kind: o.kind } : {}),
              ...(o.plugin !== undefined ? { plugin: o.plugin } : {}),
              ...(o.actor !== undefined ? { actor: o.actor } : {}),
              ...(o.limit !== undefined ? { limit: o.limit } : {}),
              ...(o.mode !== undefined ? { mode: o.mode } : {}),
            }),
          // like the other audit commands: investigating the log must not wait on the witness
          { witness: false },
        );
        print(o.json, r, searchText(r));
      },
    );
}

const part = (x: number | null): string => (x === null ? '  -  ' : x.toFixed(3));

/** The results for a person: score and its parts, the entry, and the command that proves it. */
export function searchText(r: AuditSearchResponse): string {
  const lines: string[] = [];
  const model =
    r.model === null ? 'no embedder (lexical only)' : `${r.model.name} ${r.model.id.slice(0, 12)}`;
  lines.push(
    `${r.results.length} result(s) of ${r.size} entries; semantic: ${model}, ${r.method}${
      r.queued > 0 ? `, ${r.queued} not embedded yet` : ''
    }${r.exact.length > 0 ? `; exactly: ${r.exact.join(', ')}` : ''}`,
  );
  for (const x of r.results) {
    lines.push(
      `#${x.seq}  score ${x.score.toFixed(3)} (lexical ${part(x.parts.lexical)}, semantic ${part(x.parts.semantic)})  ${x.entry.time}  ${x.entry.kind}${x.entry.plugin !== null ? ` ${x.entry.plugin}` : ''}`,
    );
    lines.push(`    ${x.entry.summary}`);
    lines.push(`    prove: ${x.prove}`);
  }
  return lines.join('\n');
}
