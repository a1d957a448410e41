#!/usr/bin/env node
import { isSea } from 'node:sea';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { describeError, OpError } from './common/contract/index.js';
import { printable, printableJson } from './common/text/printable.js';
import { clientCommands } from './client/cli/commands.js';
import { EXIT } from './client/cli/io.js';
import { sandboxCommand } from './devhost/command.js';
import { coreCommand } from './service/core/core-command.js';
import { searchEvalCommand } from './service/audit/search/search-eval-command.js';

// The one program that composes every side: the client's commands, the core (`op-dbus core`) and the
// development host (`op-dbus sandbox`). Nothing else may import across those sides (eslint.config.mjs).

/** How to start this same program again: the packaged single executable is its own interpreter. */
function selfCommand(): string[] {
  return isSea() ? [process.execPath] : [process.execPath, fileURLToPath(import.meta.url)];
}

/** The whole command tree; `run` parses argv and maps errors to exit codes. */
export function buildProgram(): Command {
  const program = new Command('op-dbus')
    .description('Declarative state for a Linux host, through the operation-dbus core on D-Bus.')
    .showHelpAfterError()
    .configureOutput({ writeErr: (s) => process.stderr.write(printable(s, 'lines')) });
  program.addCommand(coreCommand());
  clientCommands(program);
  // runs locally on a scratch log, so it is the service's code under the client's `audit` command
  program.commands.find((c) => c.name() === 'audit')?.addCommand(searchEvalCommand());
  program.addCommand(sandboxCommand([...selfCommand(), 'core']));
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
    // the message and where come from the core or a document: no character of them may act on the terminal
    if (json) process.stdout.write(printableJson(JSON.stringify({ error: payload }, null, 2)) + '\n');
    process.stderr.write(`op-dbus: ${printable(describeError(payload), 'line')}\n`);
    process.exitCode = EXIT.error;
  }
}

void run(process.argv);
