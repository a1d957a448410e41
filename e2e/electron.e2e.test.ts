import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { _electron, type ElectronApplication, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, TestSandbox } from '../test/support/sandbox.js';
import { openDocumentFile, screenshot, typeOverWord } from './support/console.js';

// The Electron tier: the same console in the shell, relaying over IPC to the core on the sandbox
// bus. It runs only where `require('electron')` resolves to a real binary (DESIGN.md section 8:
// the download is blocked on these machines) and otherwise says why it skipped.

function electronBinary(): { path: string } | { skip: string } {
  let resolved: unknown;
  try {
    resolved = createRequire(import.meta.url)('electron');
  } catch (e) {
    return {
      skip: `require('electron') does not resolve to a binary: ${e instanceof Error ? e.message : String(e)}`,
    };
  }
  if (typeof resolved !== 'string' || !existsSync(resolved)) {
    return { skip: `require('electron') gave ${JSON.stringify(resolved)}, which is not an executable` };
  }
  return { path: resolved };
}

const electron = electronBinary();
if ('skip' in electron) process.stdout.write(`[e2e] Electron tier skipped: ${electron.skip}\n`);

const TEMPLATE = `{
  "version": 1,
  "plugins": { "hostname": { "location": "PLACEHOLDER" } },
}
`;

describe.skipIf('skip' in electron)('the console in the Electron shell', () => {
  let sb: TestSandbox;
  let xvfb: ChildProcess | undefined;
  let shell: ElectronApplication;
  let page: Page;

  beforeAll(async () => {
    if ('skip' in electron) return;
    sb = await TestSandbox.start();
    const env: Record<string, string> = Object.fromEntries(
      Object.entries(sb.childEnv).filter((e): e is [string, string] => e[1] !== undefined),
    );
    if (env['DISPLAY'] === undefined) {
      // a window needs an X server; Xvfb is the one these machines have (DESIGN.md section 8)
      xvfb = spawn('Xvfb', [':97', '-screen', '0', '1400x900x24', '-nolisten', 'tcp'], { stdio: 'ignore' });
      env['DISPLAY'] = ':97';
      await new Promise((r) => setTimeout(r, 1000));
    }
    shell = await _electron.launch({
      executablePath: electron.path,
      args: [join(ROOT, 'dist/electron/main.js'), '--no-sandbox'],
      env,
    });
    page = await shell.firstWindow();
  });

  afterAll(async () => {
    await shell?.close();
    if (xvfb?.pid !== undefined) xvfb.kill('SIGTERM');
    await sb?.stop();
  });

  it('isolates the renderer: no Node, no Electron objects, only the bridge', async () => {
    expect(await page.evaluate('typeof require')).toBe('undefined');
    expect(await page.evaluate('typeof process')).toBe('undefined');
    expect(await page.evaluate('Object.keys(window.opdbus).sort().join(",")')).toBe('call,onSignal');
  });

  it('refuses navigation away from the console and new windows', async () => {
    await page.evaluate("location.href = 'https://example.com/'");
    await page.waitForTimeout(500);
    expect(page.url()).toBe('app://console/index.html');
    await page.evaluate("window.open('https://example.com/')");
    await page.waitForTimeout(500);
    expect(shell.windows()).toHaveLength(1);
  });

  it('plans, approves and applies through IPC; the audit entry holds the approved hash', async () => {
    await page.getByText('Connected to the core via Electron').waitFor();
    await openDocumentFile(page, 'electron.jsonc', TEMPLATE);
    await typeOverWord(page, 'PLACEHOLDER', 'Rack 11, electron');
    await page.getByTestId('plan-button').click();
    await page.locator('[data-testid="change-row"][data-path="/plugins/hostname/location"]').waitFor();
    await page.getByTestId('approve-button').click();
    const hash = ((await page.getByTestId('approved-hash').textContent()) ?? '').trim();
    await page.getByTestId('apply-button').click();
    await page.getByTestId('apply-result').waitFor();
    await screenshot(page, 'electron-01-applied');
    expect(sb.hostnameProperty('Location')).toBe('Rack 11, electron');
    const list = JSON.parse(sb.cli(['audit', 'list', '--json']).stdout) as {
      entries: { kind: string; summary: string }[];
    };
    expect(list.entries.find((e) => e.kind === 'approve')?.summary).toBe(`approve plan ${hash}`);
  });
});
