import { describe, expect, it } from 'vitest';
import { resolveAppFile } from './app-files.js';
import { APP_ENTRY, isConsoleUrl } from './app-origin.js';
import { SHELL_CSP } from './csp.js';
import { isTrustedSender } from './ipc-sender.js';
import { isAllowedNavigation, windowOpenDecision } from './navigation.js';
import { decidePermission } from './permissions.js';
import { secureWebPreferences } from './web-preferences.js';

// The shell's guards are pure: these run without an Electron binary.

describe('secureWebPreferences', () => {
  it('isolates and sandboxes the renderer, with no Node anywhere', () => {
    const prefs = secureWebPreferences('/opt/console/preload.cjs');
    expect(prefs).toMatchObject({
      preload: '/opt/console/preload.cjs',
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      experimentalFeatures: false,
      disableBlinkFeatures: 'Auxclick',
    });
  });
});

describe('navigation', () => {
  it('stays inside the console', () => {
    expect(isAllowedNavigation(APP_ENTRY)).toBe(true);
    expect(isAllowedNavigation('app://console/')).toBe(true);
  });

  it('refuses every other target', () => {
    for (const url of [
      'https://example.com/',
      'http://127.0.0.1:8080/',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'data:text/html,<script>1</script>',
      'app://evil/index.html',
      'app://user:pw@console/index.html',
      'app://console.evil/',
      'not a url',
    ]) {
      expect(isAllowedNavigation(url), url).toBe(false);
    }
  });

  it('opens no new windows', () => {
    expect(windowOpenDecision()).toEqual({ action: 'deny' });
  });
});

describe('permissions', () => {
  it('denies every permission the console might be asked for', () => {
    for (const p of [
      'media',
      'geolocation',
      'notifications',
      'clipboard-read',
      'clipboard-sanitized-write',
      'fileSystem',
      'openExternal',
      'hid',
      'serial',
      'usb',
      'unknown',
    ]) {
      expect(decidePermission(p), p).toBe(false);
    }
  });
});

describe('isTrustedSender', () => {
  const main = { frameUrl: 'app://console/index.html', isMainFrame: true, webContentsId: 7 };

  it('accepts the console window top frame on the console origin', () => {
    expect(isTrustedSender(main, 7)).toBe(true);
  });

  it('refuses other windows, subframes, other origins and gone frames', () => {
    expect(isTrustedSender(main, 8)).toBe(false);
    expect(isTrustedSender(main, undefined)).toBe(false);
    expect(isTrustedSender({ ...main, isMainFrame: false }, 7)).toBe(false);
    expect(isTrustedSender({ ...main, frameUrl: 'https://example.com/' }, 7)).toBe(false);
    expect(isTrustedSender({ ...main, frameUrl: 'file:///opt/console/index.html' }, 7)).toBe(false);
    expect(isTrustedSender({ ...main, frameUrl: undefined }, 7)).toBe(false);
  });
});

describe('resolveAppFile', () => {
  const dir = '/opt/console/renderer';

  it('serves the build with a content type', () => {
    expect(resolveAppFile('app://console/index.html', dir)).toEqual({
      file: `${dir}/index.html`,
      contentType: 'text/html; charset=utf-8',
    });
    expect(resolveAppFile('app://console/', dir)?.file).toBe(`${dir}/index.html`);
    expect(resolveAppFile('app://console/assets/json.worker-x.js', dir)?.contentType).toMatch(/javascript/);
  });

  it('refuses other hosts, traversal and unknown kinds', () => {
    for (const url of [
      'app://other/index.html',
      'app://console/../../etc/passwd',
      'app://console/%2e%2e/%2e%2e/etc/passwd',
      'app://console/assets/%2e%2e%2f..%2fx.js',
      'app://console/.env',
      'app://console/key.pem',
    ]) {
      expect(resolveAppFile(url, dir), url).toBeUndefined();
    }
  });
});

describe('SHELL_CSP', () => {
  it('allows only the console origin for code and no network at all', () => {
    expect(SHELL_CSP).toContain("default-src 'none'");
    expect(SHELL_CSP).toContain("script-src 'self'");
    expect(SHELL_CSP).toContain("connect-src 'none'");
    expect(SHELL_CSP).not.toMatch(/unsafe-eval/);
  });

  it('isConsoleUrl is the single definition of the console origin', () => {
    expect(isConsoleUrl(APP_ENTRY)).toBe(true);
  });
});
