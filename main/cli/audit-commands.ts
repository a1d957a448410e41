import { Command, Option } from 'commander';
import { AuditHead, AuditKind, OpError } from '../contract/index.js';
import { EXIT, print, readDocument, withClient, type JsonFlag } from './io.js';
import { auditListText, auditVerifyText } from './render.js';

/** `op-dbus audit ...`: the tamper-evident audit log. */
export function auditCommand(): Command {
  const audit = new Command('audit').description('the tamper-evident audit log');
  audit
    .command('list')
    .description('list entries, newest first')
    .option('--limit <n>', 'at most this many', (v) => Number.parseInt(v, 10))
    .option('--before <seq>', 'only entries before this sequence number', (v) => Number.parseInt(v, 10))
    .addOption(new Option('--kind <kind>', 'only this kind').choices(AuditKind.options))
    .option('--plugin <name>', 'only this plugin')
    .option('--text <words>', 'only entries whose summary contains this')
    .option('--json', 'machine-readable output')
    .action(
      async (
        o: JsonFlag & { limit?: number; before?: number; kind?: AuditKind; plugin?: string; text?: string },
      ) => {
        const r = await withClient((c) =>
          c.call('AuditList', {
            ...(o.limit !== undefined ? { limit: o.limit } : {}),
            ...(o.before !== undefined ? { beforeSeq: o.before } : {}),
            ...(o.kind !== undefined ? { kind: o.kind } : {}),
            ...(o.plugin !== undefined ? { plugin: o.plugin } : {}),
            ...(o.text !== undefined ? { text: o.text } : {}),
          }),
        );
        print(o.json, r, auditListText(r));
      },
    );
  audit
    .command('verify')
    .description('check every entry and the chain; with --checkpoint, also against a head saved earlier')
    .option(
      '--checkpoint <file>',
      'a JSON file with {size, head}, e.g. the output of an earlier `audit verify --json`',
    )
    .option('--json', 'machine-readable output')
    .action(async (o: JsonFlag & { checkpoint?: string }) => {
      let checkpoint: AuditHead | undefined;
      if (o.checkpoint !== undefined) {
        const parsed = AuditHead.safeParse(JSON.parse(readDocument(o.checkpoint)));
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

  return audit;
}
