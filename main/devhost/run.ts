import { execFile } from 'node:child_process';
import { OpError } from '../common/contract/index.js';

/** Runs a tool with an argument array (never a shell string); rejects with its stderr when it fails. */
export function run(
  command: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolveRun, rejectRun) => {
    execFile(
      command,
      [...args],
      { encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000, env: opts.env ?? process.env },
      (error, stdout, stderr) => {
        if (error === null) resolveRun(stdout);
        else {
          const why = stderr.trim() || error.message;
          rejectRun(new OpError('Internal', `${command} ${args.join(' ')}: ${why}`));
        }
      },
    );
  });
}
