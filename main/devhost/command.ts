import { Command, Option } from 'commander';
import { exportLines, sandboxDown, sandboxEnv, sandboxUp } from './host.js';

/** Where `op-dbus sandbox` keeps the development host when neither --dir nor OP_DBUS_SANDBOX says. */
export const DEFAULT_SANDBOX_DIR = '/run/op-dbus-sandbox';

/** Prints data as JSON with --json, else as text for a person. */
function print(json: boolean | undefined, data: unknown, text: string): void {
  process.stdout.write((json === true ? JSON.stringify(data, null, 2) : text) + '\n');
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
    .description('start it and print `export` lines: eval "$(op-dbus sandbox up)"')
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
    .action((o: { json?: boolean } & { dir: string }) => {
      const env = sandboxEnv(o.dir);
      print(o.json, env, exportLines(env));
    });

  return sandbox;
}
