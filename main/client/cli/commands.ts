import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { OpError, type Plan } from '../../common/contract/index.js';
import { printable, printableJson } from '../../common/text/printable.js';
import { readTopology, topologyJson, topologyText, type Topology } from '../../common/topology/index.js';
import { auditCommand } from './audit-commands.js';
import { bundleCommands } from './bundle-commands.js';
import { modelCommand } from './model-commands.js';
import { auditSearchCommand } from './search-commands.js';
import { addPluginCommands } from './plugin-commands.js';
import { readDocument } from './document-file.js';
import { lxcCommand } from './lxc-commands.js';
import { EXIT, print, withClient, writeText, type JsonFlag } from './io.js';
import { wireguardCommand } from './wireguard-commands.js';
import { applyText, driftText, planText, pluginsText, queryText, statsText, verifyText } from './render.js';

async function confirm(plan: Plan): Promise<boolean> {
  if (!process.stdin.isTTY) {
    throw new OpError(
      'InvalidArgument',
      'refusing to apply without confirmation: stdin is not a terminal; pass --yes',
    );
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`\nApply plan ${plan.hash.slice(0, 12)}? Only "yes" is accepted: `);
    return answer.trim() === 'yes';
  } finally {
    rl.close();
  }
}

/** The commands of the unprivileged client: each talks to the core over D-Bus (or reads no core at all). */
export function clientCommands(program: Command): void {
  program
    .command('query')
    .description("print each plugin's current state")
    .argument('[plugins...]', 'only these plugins')
    .option('--json', 'machine-readable output')
    .action(async (plugins: string[], o: JsonFlag) => {
      const r = await withClient((c) => c.call('Query', plugins.length > 0 ? { plugins } : {}));
      print(o.json, r, queryText(r));
    });

  program
    .command('schema')
    .description('print the JSON Schema of the desired-state document')
    .option('--json', 'accepted for uniformity: the schema is JSON either way')
    .action(async () => {
      const r = await withClient((c) => c.call('Schema', {}));
      print(true, r.schema, '');
    });

  program
    .command('plan')
    .description('show what applying a desired-state file would change (exit 0 none, 2 changes, 1 error)')
    .argument('<file>', 'desired-state document (JSON with comments)')
    .option('--json', 'machine-readable output')
    .action(async (file: string, o: JsonFlag) => {
      const plan = await withClient((c) => c.call('Plan', { document: readDocument(file), file }));
      print(o.json, plan, planText(plan));
      process.exitCode = plan.hasChanges ? EXIT.changes : EXIT.ok;
    });

  program
    .command('apply')
    .description(
      'plan, ask for approval, apply, verify; roll back on failure (Ctrl-C cancels and rolls back)',
    )
    .argument('<file>', 'desired-state document (JSON with comments)')
    .option('-y, --yes', 'approve without asking')
    .option('--plan-hash <sha256>', 'apply only if the plan is exactly this one (e.g. reviewed earlier)')
    .option(
      '--confirm-irreversible',
      "confirm each of the plan's irreversible changes (listed before it runs)",
    )
    .option('--json', 'machine-readable output')
    .action(
      async (
        file: string,
        o: JsonFlag & { yes?: boolean; planHash?: string; confirmIrreversible?: boolean },
      ) => {
        const document = readDocument(file);
        await withClient(async (c) => {
          const plan = await c.call('Plan', { document, file });
          if (o.json !== true) writeText(process.stderr, planText(plan) + '\n');
          if (o.planHash !== undefined && o.planHash !== plan.hash) {
            throw new OpError(
              'StalePlan',
              `the plan is now ${plan.hash}, not the reviewed ${o.planHash}: the host or the file changed; review the new plan`,
              { file },
            );
          }
          if (!plan.hasChanges) {
            print(o.json, { plan, apply: null }, 'Nothing to apply.');
            return;
          }
          if (o.yes !== true && o.planHash === undefined && !(await confirm(plan))) {
            throw new OpError('NotApproved', 'not applied: the plan was not approved');
          }
          // a person at a terminal can answer polkit's password prompt (auth_admin_keep for apply)
          const interactive = process.stdin.isTTY;
          await c.call('Approve', { planId: plan.id, hash: plan.hash }, { interactive });
          const stop =
            o.json === true
              ? () => undefined
              : await c.onProgress((p) => writeText(process.stderr, `  … ${printable(p.message, 'line')}\n`));
          // Ctrl-C asks the core to stop between steps and roll back; the apply's own answer says how it ended
          const cancel = (): void => {
            process.stderr.write('\n  … cancelling: the core stops at the next step and rolls back\n');
            void c.call('Cancel', { planId: plan.id }).catch(() => undefined);
          };
          process.on('SIGINT', cancel);
          try {
            const result = await c.call(
              'Apply',
              {
                planId: plan.id,
                hash: plan.hash,
                ...(o.confirmIrreversible === true ? { confirmIrreversible: plan.irreversible } : {}),
              },
              { interactive },
            );
            print(o.json, { plan, apply: result }, applyText(result));
          } finally {
            process.off('SIGINT', cancel);
            stop();
          }
        });
      },
    );

  program
    .command('verify')
    .description('compare the host with a desired-state file (exit 0 in sync, 2 drift, 1 error)')
    .argument('<file>', 'desired-state document (JSON with comments)')
    .option('--json', 'machine-readable output')
    .action(async (file: string, o: JsonFlag) => {
      const r = await withClient((c) => c.call('Verify', { document: readDocument(file), file }));
      print(o.json, r, verifyText(r));
      process.exitCode = r.inSync ? EXIT.ok : EXIT.changes;
    });

  program
    .command('drift')
    .description('compare the host with the last applied document (exit 0 in sync, 2 drift, 1 error)')
    .option('--json', 'machine-readable output')
    .action(async (o: JsonFlag) => {
      const r = await withClient((c) => c.call('Drift', {}));
      print(o.json, r, driftText(r));
      process.exitCode = r.inSync ? EXIT.ok : EXIT.changes;
    });

  program
    .command('converge')
    .description('re-apply the last applied document where the host drifted from it')
    .option('--confirm-irreversible', 'confirm the irreversible changes a converge would make')
    .option('--json', 'machine-readable output')
    .action(async (o: JsonFlag & { confirmIrreversible?: boolean }) => {
      await withClient(async (c) => {
        const interactive = process.stdin.isTTY;
        const stop =
          o.json === true
            ? () => undefined
            : await c.onProgress((p) => writeText(process.stderr, `  … ${printable(p.message, 'line')}\n`));
        try {
          // confirming means naming each irreversible change: a dry run says which the converge would make
          const confirmIrreversible =
            o.confirmIrreversible === true
              ? (await c.call('Converge', { dryRun: true })).plan.irreversible
              : [];
          const r = await c.call('Converge', { confirmIrreversible }, { interactive });
          print(
            o.json,
            r,
            r.apply === null
              ? `In sync with applied plan ${r.planHash}: nothing to converge.`
              : `Converged to applied plan ${r.planHash}:\n${planText(r.plan)}\n${applyText(r.apply)}`,
          );
        } finally {
          stop();
        }
      });
    });

  const plugin = program.command('plugin').description('the plugins the core found through their manifests');
  plugin
    .command('list')
    .description('each plugin: version, source, order (after), permissions, available or why not')
    .option('--json', 'machine-readable output')
    .action(async (o: JsonFlag) => {
      const r = await withClient((c) => c.call('Plugins', {}));
      print(o.json, r, pluginsText(r));
    });
  addPluginCommands(plugin);
  bundleCommands(plugin);

  program
    .command('stats')
    .description("the core's live metrics: per-node memory, where it runs, page-cache residency of its files")
    .option('--watch', 'print each Metrics signal the core sends (until interrupted)')
    .option('--json', 'machine-readable output (one JSON document per line with --watch)')
    .action(async (o: JsonFlag & { watch?: boolean }) => {
      if (o.watch !== true) {
        const s = await withClient((c) => c.call('Stats', {}));
        print(o.json, s, statsText(s));
        return;
      }
      await withClient(async (c) => {
        const stop = await c.onSignal('Metrics', (s) =>
          o.json === true
            ? process.stdout.write(printableJson(JSON.stringify(s)) + '\n')
            : writeText(process.stdout, `${statsText(s)}\n\n`),
        );
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        stop();
      });
    });

  program
    .command('topology')
    .description('CPU, cache and NUMA topology read from sysfs (no core needed)')
    .option(
      '--sysfs-root <dir>',
      'read this sysfs tree instead of /sys (e.g. a saved copy of another machine)',
      '/sys',
    )
    .option('--json', 'machine-readable output')
    .action((o: JsonFlag & { sysfsRoot: string }) => {
      let t: Topology;
      try {
        t = readTopology(o.sysfsRoot);
      } catch (e) {
        throw new OpError('InvalidArgument', `--sysfs-root: ${e instanceof Error ? e.message : String(e)}`, {
          file: o.sysfsRoot,
        });
      }
      // every machine has a CPU: none means the directory is not a sysfs tree, not an empty machine
      if (t.cpus.length === 0) {
        throw new OpError(
          'InvalidArgument',
          `no CPUs under ${o.sysfsRoot}: it holds neither devices/system/cpu/cpuN nor sys/devices/system/cpu/cpuN; --sysfs-root takes /sys or a saved copy of it`,
          { file: o.sysfsRoot },
        );
      }
      print(o.json, topologyJson(t), topologyText(t));
    });

  program.addCommand(auditCommand().addCommand(auditSearchCommand()));
  program.addCommand(lxcCommand());
  program.addCommand(wireguardCommand());
  program.addCommand(modelCommand());
  program.command('serve', 'serve the console on 127.0.0.1', {
    executableFile: './client/serve/serve-main.js',
  });
}
