import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OpError } from '../../common/contract/index.js';
import { parseCoreConfig, pluginConfig, readCoreConfig } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'opdbus-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the core's configuration", () => {
  it('lays [plugins.<name>] over the manifest config key by key', () => {
    const config = parseCoreConfig('[plugins.lxc]\nstorages = { local = "/srv/tmpl" }\n', 'c.toml');
    expect(pluginConfig({ storages: {}, lxcpath: '/var/lib/lxc' }, config, 'lxc')).toEqual({
      storages: { local: '/srv/tmpl' },
      lxcpath: '/var/lib/lxc',
    });
    expect(pluginConfig({ a: 1 }, config, 'net')).toEqual({ a: 1 });
  });

  it('names the line and column of invalid TOML, and the key of a schema error', () => {
    const bad = (text: string): OpError => {
      try {
        parseCoreConfig(text, '/etc/op-dbus/config.toml');
      } catch (e) {
        if (e instanceof OpError) return e;
      }
      throw new Error('accepted');
    };
    const toml = bad('[plugins.lxc]\nstorages = = 1\n');
    expect(toml.code).toBe('ParseError');
    expect(toml.message).toMatch(/^\/etc\/op-dbus\/config\.toml:2:\d+: invalid TOML/);
    expect(bad('[other]\nx = 1\n').message).toMatch(/config\.toml: .*other/i);
    expect(bad('[plugins.Bad-Name]\nx = 1\n').message).toMatch(/plugins\.Bad-Name/);
  });

  it('reads no file as the defaults only when none was named, and refuses a file others may write', () => {
    expect(readCoreConfig(undefined).plugins).toBeTypeOf('object');
    expect(() => readCoreConfig(join(dir, 'absent.toml'))).toThrow(/absent\.toml/);
    const file = join(dir, 'config.toml');
    writeFileSync(file, '[plugins.hostname]\n');
    chmodSync(file, 0o666);
    expect(() => readCoreConfig(file)).toThrow(/writable by every user/);
    chmodSync(file, 0o644);
    expect(readCoreConfig(file).plugins).toEqual({ hostname: {} });
  });
});
