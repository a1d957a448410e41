#!/usr/bin/env node
import { createInterface } from 'node:readline/promises';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { isSea } from 'node:sea';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { describeError, OpError, type Plan } from '../contract/index.js';
import { haltPointFromEnv, startCore } from '../core/core.js';
import { exportLines, sandboxDown, sandboxEnv, sandboxUp } from '../sandbox/host.js';
import { auditCommand } from './audit-commands.js';
import {
  DEFAULT_DATA_DIR,
  DEFAULT_SANDBOX_DIR,
  EXIT,
  print,
  readDocument,
  withClient,
  type JsonFlag,
} from './io.js';
import { readTopology, topologyJson, topologyText } from '../topology/index.js';
import { applyText, planText, queryText, statsText, verifyText } from './render.js';

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

/** The pkexec path's log: beside the private bus once its directory exists; before, on stderr (pkexec's pipe). */
function logBesideBus(dir: string, line: string): void {
  try {
    appendFileSync(join(dir, 'core.log'), line + '\n');
  } catch {
    process.stderr.write(line + '\n');
  }
}

/** How to start this same program again: the packaged single executable is its own interpreter. */
function selfCommand(): string[] {
  return isSea() ? [process.execPath] : [process.execPath, fileURLToPath(import.meta.url)];
}

/** The whole command tree; `run` parses argv and maps errors to exit codes. */
export function buildProgram(): Command {
  const program = new Command('op-dbus')
    .description('Declarative state for a Linux host, through the operation-dbus core on D-Bus.')
    .showHelpAfterError()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('core')
    .description('run the core (org.opdbus.Manager1) on the system bus, in the foreground')
    .option('--data-dir <dir>', 'state, journal and audit log (env OP_DBUS_DATA_DIR)')
    .option(
      '--private-bus <dir>',
      'the pkexec path: serve on a private bus in DIR for the user who ran pkexec',
    )
    .action(async (o: { dataDir?: string; privateBus?: string }) => {
      const dataDir = o.dataDir ?? process.env['OP_DBUS_DATA_DIR'] ?? DEFAULT_DATA_DIR;
      const privateBus =
        o.privateBus === undefined
          ? undefined
          : { dir: o.privateBus, uid: Number(process.env['PKEXEC_UID'] ?? process.getuid?.() ?? 0) };
      const core = await startCore({
        dataDir,
        privateBus,
        haltAt: haltPointFromEnv(process.env['OP_DBUS_TEST_HALT_AT']),
        // on the pkexec path stderr is the client's pipe, which goes away with it: log beside the bus
        ...(privateBus !== undefined ? { log: (line: string) => logBesideBus(privateBus.dir, line) } : {}),
      });
      const parent = process.ppid;
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
        // on the pkexec path the core lives as long as the client that started it
        if (privateBus !== undefined) setInterval(() => process.ppid !== parent && stop(), 200).unref();
      });
      await core.stop();
    });

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
    .description('plan, ask for approval, apply, verify; roll back on failure')
    .argument('<file>', 'desired-state document (JSON with comments)')
    .option('-y, --yes', 'approve without asking')
    .option('--plan-hash <sha256>', 'apply only if the plan is exactly this one (e.g. reviewed earlier)')
    .option('--json', 'machine-readable output')
    .action(async (file: string, o: JsonFlag & { yes?: boolean; planHash?: string }) => {
      const document = readDocument(file);
      await withClient(async (c) => {
        const plan = await c.call('Plan', { document, file });
        if (o.json !== true) process.stderr.write(planText(plan) + '\n');
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
            : await c.onProgress((p) => process.stderr.write(`  … ${p.message}\n`));
        try {
          const result = await c.call('Apply', { planId: plan.id, hash: plan.hash }, { interactive });
          print(o.json, { plan, apply: result }, applyText(result));
        } finally {
          stop();
        }
      });
    });

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
          process.stdout.write((o.json === true ? JSON.stringify(s) : `${statsText(s)}\n`) + '\n'),
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
      const t = readTopology(o.sysfsRoot);
      print(o.json, topologyJson(t), topologyText(t));
    });

  program.addCommand(auditCommand());
  program.command('serve', 'serve the console on 127.0.0.1', { executableFile: '../serve/serve-main.js' });

  const sandbox = program
    .command('sandbox')
    .description('a private system-like bus with polkitd, hostnamed and the core');
  const dirOption = (): Option =>
    new Option('--dir <dir>', 'sandbox directory').env('OP_DBUS_SANDBOX').default(DEFAULT_SANDBOX_DIR);
  sandbox
    .command('up')
    .description('start it and print `export` lines: eval "$(op-dbus sandbox up)"')
    .addOption(dirOption())
    .option('--no-core', 'start only the bus, polkitd and hostnamed')
    .option('--json', 'print the environment as JSON instead of export lines')
    .action(async (o: JsonFlag & { dir: string; core: boolean }) => {
      const env = await sandboxUp({
        dir: o.dir,
        ...(o.core ? { coreCommand: [...selfCommand(), 'core'] } : {}),
      });
      print(o.json, env, exportLines(env));
    });
  sandbox
    .command('down')
    .description('stop everything the sandbox started and remove its directory')
    .addOption(dirOption())
    .action(async (o: { dir: string }) => {
      await sandboxDown(o.dir);
    });
  sandbox
    .command('env')
    .description('print the `export` lines of a running sandbox')
    .addOption(dirOption())
    .option('--json', 'machine-readable output')
    .action((o: JsonFlag & { dir: string }) => {
      const env = sandboxEnv(o.dir);
      print(o.json, env, exportLines(env));
    });

  return program;
}

/** Runs the CLI; every error becomes one readable line (or a JSON object with --json) and exit code 1. */
export async function run(argv: string[]): Promise<void> {
  const json = argv.includes('--json');
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    const payload =
      e instanceof OpError
        ? e.toPayload()
        : { code: 'Internal' as const, message: e instanceof Error ? e.message : String(e) };
    if (json) process.stdout.write(JSON.stringify({ error: payload }, null, 2) + '\n');
    process.stderr.write(`op-dbus: ${describeError(payload)}\n`);
    process.exitCode = EXIT.error;
  }
}

void run(process.argv);
