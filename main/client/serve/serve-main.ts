#!/usr/bin/env node
// `op-dbus serve`: the CLI registers this file as an executable subcommand, so the CLI itself never
// loads the HTTP and WebSocket code.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { describeError, OpError } from '../../common/contract/index.js';
import { printable } from '../../common/text/printable.js';
import { ManagerClient } from '../dbus/manager-client.js';
import { verifyEntryInclusion } from '../witness/inclusion.js';
import { witnessReporter } from '../witness/witness.js';
import { startConsoleServer } from './server.js';

const RENDERER_BUILD = join('dist', 'renderer');

/** The renderer build of the project this file belongs to (source tree or dist/). */
function defaultRendererDir(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let d = start; d !== dirname(d); d = dirname(d)) {
    if (existsSync(join(d, RENDERER_BUILD, 'index.html'))) return join(d, RENDERER_BUILD);
  }
  throw new OpError(
    'InvalidArgument',
    'the console is not built: run `npm run build:renderer` (or pass --renderer-dir)',
  );
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new InvalidArgumentError('a TCP port, 0-65535 (0: any free port)');
  return port;
}

async function serve(o: { port: number; rendererDir?: string }): Promise<void> {
  const rendererDir = o.rendererDir !== undefined ? resolve(o.rendererDir) : defaultRendererDir();
  if (!existsSync(join(rendererDir, 'index.html'))) {
    throw new OpError('InvalidArgument', `no index.html in ${rendererDir}: run \`npm run build:renderer\``, {
      file: rendererDir,
    });
  }
  const core = await ManagerClient.connect();
  const witness = witnessReporter(() => Promise.resolve(core));
  const server = await startConsoleServer({
    port: o.port,
    rendererDir,
    core,
    witness,
    verifyInclusion: (seq) => verifyEntryInclusion(core, witness, seq),
    // lines name what a client sent (a path, a Host): no character of it may act on the admin's terminal
    log: (line) => process.stderr.write(`${printable(line, 'line')}\n`),
  });
  process.stdout.write(
    `op-dbus console on 127.0.0.1:${server.port}. Open this URL (it works once):\n  ${server.url}\n`,
  );
  await new Promise<void>((resolveStop) => {
    process.once('SIGTERM', resolveStop);
    process.once('SIGINT', resolveStop);
  });
  await server.close();
  core.close();
}

const program = new Command('op-dbus serve')
  .description(
    'serve the console to a browser on 127.0.0.1, relaying to the core over D-Bus as the user who runs it',
  )
  .option('--port <n>', 'TCP port on 127.0.0.1 (0: any free port)', parsePort, 0)
  .option('--renderer-dir <dir>', 'the built console (default: dist/renderer of this installation)')
  .action(serve);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  const payload =
    e instanceof OpError
      ? e.toPayload()
      : { code: 'Internal' as const, message: e instanceof Error ? e.message : String(e) };
  process.stderr.write(`op-dbus serve: ${printable(describeError(payload), 'line')}\n`);
  process.exitCode = 1;
}
