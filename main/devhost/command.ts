import { spawn } from 'node:child_process';
import { Command, Option } from 'commander';
import { witnessDir, WitnessStore } from '../common/witness/store.js';
import {
  exportLines,
  sandboxDown,
  sandboxEnv,
  sandboxExecCommand,
  sandboxStatus,
  sandboxUp,
  sandboxWipe,
  type HostStatus,
} from './host.js';

/** Where `op-dbus sandbox` keeps the development host when neither --dir nor OP_DBUS_SANDBOX says. */
export const DEFAULT_SANDBOX_DIR = '/run/op-dbus-sandbox';

/** Prints data as JSON with --json, else as text for a person. */
function print(json: boolean | undefined, data: unknown, text: string): void {
  process.stdout.write((json === true ? JSON.stringify(data, null, 2) : text) + '\n');
}

/** One line a component: name, PID, health, what was checked. */
function statusText(status: HostStatus): string {
  const rows = status.components.map((c) => [
    c.name,
    c.pid === null ? '-' : `PID ${c.pid}`,
    c.healthy ? 'healthy' : 'UNHEALTHY',
    c.detail,
  ]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const lines = rows.map((r) => r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i] ?? 0) : cell)).join('  '));
  return [`sandbox at ${status.dir}`, ...lines].join('\n');
}

/** `op-dbus sandbox`: the development host; coreCommand starts the core in it. */
export function sandboxCommand(coreCommand: string[]): Command {
  const program = new Command();
  const sandbox = program
    .command('sandbox')
    .description('a private system-like bus with polkitd, hostnamed and the core');
  const dirOption = (): Option =>
    new Option('--dir <dir>', 'sandbox directory').env('OP_DBUS_SANDBOX').default(DEFAULT_SANDBOX_DIR);
  sandbox
    .command('up')
    .description(
      'start it (resuming the data a `down` kept) and print `export` lines: eval "$(op-dbus sandbox up)"',
    )
    .addOption(dirOption())
    .option('--no-core', 'start only the bus, polkitd and hostnamed')
    .option('--json', 'print the environment as JSON instead of export lines')
    .action(async (o: { json?: boolean } & { dir: string; core: boolean }) => {
      const env = await sandboxUp({
        dir: o.dir,
        ...(o.core ? { coreCommand: coreCommand } : {}),
      });
      print(o.json, env, exportLines(env));
    });
  sandbox
    .command('down')
    .description("stop everything the sandbox started; keep the host's data (DIR/data) for the next up")
    .addOption(dirOption())
    .option('--wipe', 'also remove the directory with its data, and have the witness forget this host')
    .action(async (o: { dir: string; wipe?: boolean }) => {
      if (o.wipe === true) await sandboxWipe(o.dir, new WitnessStore(witnessDir()));
      else await sandboxDown(o.dir);
    });
  sandbox
    .command('env')
    .description('print the `export` lines of a running sandbox')
    .addOption(dirOption())
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean } & { dir: string }) => {
      const env = sandboxEnv(o.dir);
      print(o.json, env, exportLines(env));
    });
  sandbox
    .command('status')
    .description('each component with its PID and health; exit 0 when all are healthy, 1 otherwise')
    .addOption(dirOption())
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean } & { dir: string }) => {
      const status = await sandboxStatus(o.dir);
      print(o.json, status, statusText(status));
      if (!status.components.every((c) => c.healthy)) process.exitCode = 1;
    });
  sandbox
    .command('exec')
    .description(
      'run a command in the host\'s namespaces as its core runs: op-dbus sandbox exec -- lxc-ls -f -P "$OP_DBUS_LXC_PATH"',
    )
    .addOption(dirOption())
    .argument('<command...>', 'the command and its arguments (after --)')
    .action(async (cmd: string[], o: { dir: string }) => {
      const { argv, env } = sandboxExecCommand(o.dir, cmd);
      const [executable, ...args] = argv;
      const child = spawn(executable ?? 'unshare', args, { stdio: 'inherit', env });
      const code = await new Promise<number>((done) => {
        child.once('error', () => done(127));
        child.once('exit', (c, signal) => done(c ?? (signal === null ? 1 : 128 + 1)));
      });
      process.exitCode = code;
    });

  return sandbox;
}
