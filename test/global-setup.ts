import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

/** Tests run the CLI and the core as real processes, from the compiled tree: build it once first. */
export default function setup(): void {
  const root = resolve(import.meta.dirname, '..');
  execFileSync(
    process.execPath,
    [resolve(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
}
