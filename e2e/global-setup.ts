import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { leftoverCheck } from '../test/support/leftovers.js';

/**
 * The e2e tiers run the CLI and the shell from dist/ and load dist/renderer: build all three once.
 * As in test/global-setup.ts, type errors are `npm run typecheck`'s to report; tsc still emits, and
 * the teardown fails the run if the tests left anything behind.
 */
export default function setup(project: TestProject): () => void {
  const teardown = leftoverCheck([project.tmpDir]);
  const root = resolve(import.meta.dirname, '..');
  const run = (script: string, args: string[]): void => {
    spawnSync(process.execPath, [resolve(root, 'node_modules', script), ...args], {
      cwd: root,
      stdio: 'inherit',
    });
  };
  run('typescript/bin/tsc', ['-p', 'tsconfig.build.json']);
  run('typescript/bin/tsc', ['-p', 'electron/tsconfig.build.json']);
  run('vite/bin/vite.js', ['build', '--config', 'renderer/vite.config.mts', '--logLevel', 'warn']);
  for (const built of [
    'dist/main/op-dbus.js',
    'dist/main/client/serve/serve-main.js',
    'dist/renderer/index.html',
  ]) {
    if (!existsSync(resolve(root, built))) throw new Error(`the build produced no ${built}`);
  }
  return teardown;
}
