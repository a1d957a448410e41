import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/sandbox.js';

// The desktop app's packaging: electron-builder's configuration, checked against electron-builder's
// own JSON schema (app-builder-lib/scheme.json), since electron-builder itself cannot run here (it
// downloads its deb and AppImage tools, and no Electron binary can be had). Where an Electron dist is
// given (ELECTRON_DIST), the app is really packaged as an unpacked directory.

const require = createRequire(import.meta.url);
const CONFIG = join(ROOT, 'build/electron-builder.json');
const config = JSON.parse(readFileSync(CONFIG, 'utf8')) as Record<string, unknown> & {
  electronFuses: Record<string, boolean>;
  linux: { target: string[]; desktop: { entry: Record<string, string> } };
  deb: { fpm: string[]; depends: string[] };
  files: string[];
};
const schema = require('app-builder-lib/scheme.json') as object;
const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);

describe("the desktop app's electron-builder configuration", () => {
  it("is valid against electron-builder's own schema, which refuses a misspelt key", () => {
    expect(validate(config), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...config, electronFusez: {} })).toBe(false);
    expect(validate({ ...config, electronFuses: { ...config.electronFuses, runAsNod: false } })).toBe(false);
  });

  it('builds deb and AppImage with the fuses that shut Node-in-Electron entry points', () => {
    expect(config.linux.target.sort()).toEqual(['AppImage', 'deb']);
    expect(config.electronFuses).toMatchObject({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
      grantFileProtocolExtraPrivileges: false,
    });
    expect(config.linux.desktop.entry).toMatchObject({
      Name: 'operation-dbus',
      Categories: 'System;Settings;',
    });
  });

  it("ships the core's polkit policy, D-Bus policy and activation file and unit where install.sh puts them", () => {
    const install = readFileSync(join(ROOT, 'build/install.sh'), 'utf8');
    const mapped = config.deb.fpm.map((m) => m.split('='));
    expect(mapped.map(([from]) => from).sort()).toEqual([
      'build/dbus/org.opdbus.Manager1.conf',
      'build/dbus/org.opdbus.Manager1.service',
      'build/polkit/org.opdbus.policy',
      'build/systemd/op-dbus.service',
    ]);
    for (const [from, to] of mapped) {
      expect(existsSync(join(ROOT, from as string)), from).toBe(true);
      // the same directory install.sh installs that file into
      const dir = (to as string).slice(0, (to as string).lastIndexOf('/'));
      expect(install, `${from} → ${dir}`).toContain(`"$here/${from}" "$dest${dir}/"`);
    }
    expect(config.deb.depends).toEqual(['dbus', 'polkitd']);
    // the files it packs exist in a build (the renderer, the Electron main and its preload)
    for (const f of ['dist/electron/main.js', 'dist/electron/preload.cjs', 'dist/renderer/index.html']) {
      expect(existsSync(join(ROOT, f)), `${f} (npm run build:electron, build:renderer)`).toBe(true);
    }
  });

  const electronDist = process.env['ELECTRON_DIST'];
  it.runIf(electronDist !== undefined)(
    'packages the app where an Electron dist is given (ELECTRON_DIST)',
    () => {
      const r = spawnSync(
        process.execPath,
        [
          require.resolve('electron-builder/cli.js'),
          '--config',
          CONFIG,
          '--linux',
          'dir',
          `-c.electronDist=${electronDist}`,
        ],
        { cwd: ROOT, encoding: 'utf8', timeout: 300_000 },
      );
      expect(r.status, r.stderr).toBe(0);
      expect(existsSync(join(ROOT, 'dist/electron-app/linux-unpacked/op-dbus-console'))).toBe(true);
    },
  );
  if (electronDist === undefined) {
    it.skip('packages the app: skipped, no Electron dist here (set ELECTRON_DIST to an unpacked Electron 41 to run it)', () => {});
  }
});
