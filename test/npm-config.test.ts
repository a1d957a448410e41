import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './support/sandbox.js';

// npm warns on every command about a project config key it does not know (issue 11, point 7).
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'opdbus-npmrc-'));
  writeFileSync(join(dir, 'user-npmrc'), '');
  writeFileSync(join(dir, 'global-npmrc'), '');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the project's .npmrc", () => {
  it('holds only keys npm knows: `npm config list` prints no warning', () => {
    // the user's and the machine's npmrc are left out: only the project's keys are under test; and npm
    // writes nothing into ~/.npm (no debug log, no update check)
    const r = spawnSync('npm', ['config', 'list'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: {
        ...process.env,
        npm_config_userconfig: join(dir, 'user-npmrc'),
        npm_config_globalconfig: join(dir, 'global-npmrc'),
        npm_config_logs_max: '0',
        npm_config_update_notifier: 'false',
      },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`"project" config from ${join(ROOT, '.npmrc')}`);
    expect(r.stderr).not.toMatch(/warn/i);
  });

  it("set-up's npm ci tells onnxruntime-node's installer to skip its download, through the environment", () => {
    const install = readFileSync(join(ROOT, '.ci/setup'), 'utf8')
      .split('\n')
      .filter((l) => /\bnpm ci\b/.test(l) && !l.startsWith('#'));
    expect(install).toHaveLength(1);
    expect(install[0]).toMatch(/\bONNXRUNTIME_NODE_INSTALL=skip\b/);
  });
});
