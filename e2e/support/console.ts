import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CLI, ROOT, type TestSandbox } from '../../test/support/sandbox.js';

export const ARTIFACTS = join(ROOT, 'test-artifacts', 'e2e');
export const CHROMIUM = '/usr/bin/chromium';

// DESIGN.md section 8: what Chromium needs on these machines (no GPU, no network but the registries).
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A running `op-dbus serve` (a child process of the test, stopped by PID). */
export interface ServeProcess {
  url: string;
  origin: string;
  port: number;
  stderr(): string;
  stop(): Promise<void>;
}

/** Starts `op-dbus serve --port 0` against the sandbox and waits for the URL it prints. */
export async function startServe(sb: TestSandbox): Promise<ServeProcess> {
  // as an admin runs it: the CLI, which starts serve as its subcommand and forwards SIGTERM to it
  // its own process group: stop() can end the CLI and the serve it runs, even if they ignore SIGTERM
  const child: ChildProcess = spawn(process.execPath, [CLI, 'serve', '--port', '0'], {
    env: sb.childEnv,
    stdio: 'pipe',
    detached: true,
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`op-dbus serve printed no URL in 15 s: ${err}`)), 15_000);
    const check = (): void => {
      const m = /http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64}/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => reject(new Error(`op-dbus serve exited (${code ?? 'signal'}): ${err}`)));
  });
  const parsed = new URL(url);
  return {
    url,
    origin: parsed.origin,
    port: Number(parsed.port),
    stderr: () => err,
    stop: async () => {
      if (child.exitCode !== null || child.pid === undefined) return;
      const pid = child.pid;
      const exited = new Promise<boolean>((resolve) => child.once('exit', () => resolve(true)));
      child.kill('SIGTERM');
      const inTime = await Promise.race([
        exited,
        new Promise<boolean>((r) => setTimeout(() => r(false), 15_000)),
      ]);
      if (inTime) return;
      process.kill(-pid, 'SIGKILL');
      await exited;
      throw new Error(
        `op-dbus serve did not exit within 15 s of SIGTERM; its last words:\n${err.slice(-2000)}`,
      );
    },
  };
}

/** Debian's Chromium with a fresh profile and home; close() removes both. */
export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'opdbus-chromium-'));
  const home = join(dir, 'home');
  mkdirSync(home);
  // --user-data-dir does not cover everything: Chromium keeps its crash reports in
  // $XDG_CONFIG_HOME/chromium and GLib its dconf cache in $XDG_CACHE_HOME, both under the real home
  const env = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_CACHE_HOME: join(home, '.cache'),
  };
  const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    env,
    viewport: { width: 1400, height: 880 },
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot under test-artifacts/e2e/ and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  if (!existsSync(ARTIFACTS)) mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/** Opens a desired-state file through the editor's Open… control (the browser's file input). */
export async function openDocumentFile(page: Page, name: string, text: string): Promise<void> {
  await page
    .getByTestId('open-file')
    .setInputFiles({ name, mimeType: 'application/json', buffer: Buffer.from(text) });
  await page.locator('.file-name').getByText(name).waitFor();
}

/** Double-clicks a word in the desired-state editor and types over it, as an admin would. */
export async function typeOverWord(page: Page, word: string, replacement: string): Promise<void> {
  const token = page
    .locator('[data-testid="desired-editor"] .view-lines')
    .getByText(`"${word}"`, { exact: true });
  await token.dblclick();
  await page.keyboard.type(replacement);
}
