import { lstatSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { packBundle, readSigningKey } from '../../common/bundles/format.js';
import { OpError, type InstalledBundle, type PluginShowResponse } from '../../common/contract/index.js';
import { print, withClient, type JsonFlag } from './io.js';

// `op-dbus plugin pack|install|remove|rollback|show`: plugins as signed bundles (docs/bundles.md).
// pack runs here, with the admin's key; the rest asks the core, which checks every bundle itself.

/** Registers the bundle subcommands on `op-dbus plugin`. */
export function bundleCommands(plugin: Command): void {
  plugin
    .command('pack')
    .description('pack a plugin directory into a signed bundle (Ed25519 private key, PKCS#8 PEM, mode 0600)')
    .argument('<dir>', 'the plugin directory (plugin.toml and its files)')
    .requiredOption('--key <file>', 'the signing key: openssl genpkey -algorithm ed25519 -out FILE')
    .option('--out <file>', 'where to write the bundle (default: <name>-<version>.opdbundle)')
    .option('--json', 'machine-readable output')
    .action((dir: string, o: JsonFlag & { key: string; out?: string }) => {
      const key = readSigningKey(o.key);
      const { archive, hash, manifest } = packBundle(resolve(dir), key);
      const out = o.out ?? `${manifest.plugin.name}-${manifest.plugin.version}.opdbundle`;
      writeFileSync(out, archive, { mode: 0o644 });
      const result = {
        file: resolve(out),
        name: manifest.plugin.name,
        version: manifest.plugin.version,
        hash,
        signer: manifest.signer,
        files: manifest.files.length,
        bytes: archive.length,
      };
      print(
        o.json,
        result,
        `${out}: ${result.name} ${result.version}, ${result.files} files, ${result.bytes} bytes\n  hash   ${hash}\n  signer ${result.signer}`,
      );
    });

  plugin
    .command('install')
    .description(
      'install a bundle: checked by the core, stored read-only, made active (the previous version kept)',
    )
    .argument('<file>', 'the bundle')
    .option('--json', 'machine-readable output')
    .action(async (file: string, o: JsonFlag) => {
      const st = lstatSync(file);
      if (!st.isFile()) throw new OpError('InvalidArgument', `${file} is not a regular file`, { file });
      const bundle = readFileSync(file).toString('base64');
      const r = await withClient((c) => c.call('PluginInstall', { bundle, file: basename(file) }));
      print(
        o.json,
        r,
        r.already
          ? `${r.name} ${r.version} (${r.hash.slice(0, 16)}) is already the active version`
          : `${r.name} ${r.version} installed and active, used by the next plan\n  hash   ${r.hash}\n  signer ${r.signer} (${r.signerKey})${r.before !== null ? `\n  previous version ${r.before.slice(0, 16)} kept: op-dbus plugin rollback ${r.name}` : ''}`,
      );
    });

  plugin
    .command('rollback')
    .description('make the previous installed version of a plugin active again')
    .argument('<name>', 'the plugin')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: JsonFlag) => {
      const r = await withClient((c) => c.call('PluginRollback', { name }));
      print(
        o.json,
        r,
        `${name}: ${r.from.slice(0, 16)} → ${r.to.slice(0, 16)} (active)\n${bundleText(r.bundle)}`,
      );
    });

  plugin
    .command('remove')
    .description('remove an installed plugin and all its versions')
    .argument('<name>', 'the plugin')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: JsonFlag) => {
      const r = await withClient((c) => c.call('PluginRemove', { name }));
      print(o.json, r, `${name}: removed (${r.removed.length} version(s))`);
    });
}

/** The installed bundles as text (`plugin show`, plugin-commands.ts). */
export function showText(r: PluginShowResponse): string {
  const storage =
    r.storage === 'btrfs'
      ? 'storage: btrfs (each version a read-only subvolume)'
      : 'storage: plain directories (the data dir is not on BTRFS)';
  const keys = `trusted keys in ${r.trustedKeys.dir}: ${r.trustedKeys.keys.length === 0 ? 'none' : r.trustedKeys.keys.map((k) => `${basename(k.file)} ${k.fingerprint}`).join(', ')}`;
  const ignored = r.trustedKeys.ignored.map((i) => `  ignored ${i.file}: ${i.reason}`);
  const bundles = r.bundles.length === 0 ? ['no bundles installed'] : r.bundles.map(bundleText);
  return [storage, keys, ...ignored, ...bundles].join('\n');
}

function bundleText(b: InstalledBundle): string {
  const lines = [`${b.name}:`];
  for (const v of b.versions) {
    const mark = v.active ? 'active  ' : v.previous ? 'previous' : '        ';
    lines.push(
      `  ${mark} ${v.version.padEnd(10)} ${v.hash}\n           signer ${v.signer} (${basename(v.signerKey)}), ${v.files} files, ${v.bytes} bytes, ${v.kind}${v.readOnly ? ' (read-only)' : ''}, installed ${v.installedAt} by ${v.installedBy}`,
    );
  }
  return lines.join('\n');
}
