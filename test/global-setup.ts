import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { leftoverCheck } from './support/leftovers.js';

/**
 * Tests run the CLI and the core as real processes, from the compiled tree: build it once first.
 * Type errors are `npm run typecheck`'s to report (the test command runs it first); tsc still emits,
 * so a type error elsewhere does not hide what the tests would say. The teardown fails the run if
 * the tests left anything behind (test/support/leftovers.ts).
 */
export default function setup(project: TestProject): () => void {
  const teardown = leftoverCheck([project.tmpDir]);
  const root = resolve(import.meta.dirname, '..');
  const r = spawnSync(
    process.execPath,
    [resolve(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
  if (!existsSync(resolve(root, 'dist/main/op-dbus.js'))) {
    throw new Error(`the build produced no dist/main/op-dbus.js (tsc exit ${String(r.status)})`);
  }
  return teardown;
}
