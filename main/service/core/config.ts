import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { OpError } from '../../common/contract/index.js';
import { readTomlOrThrow } from '../../common/text/toml.js';
import { untrustedBecause } from '../plugins/trust.js';

// The core's own configuration: one TOML file (--config, env OP_DBUS_CONFIG, default
// /etc/op-dbus/config.toml; absent = defaults). It holds `[bundles]` (the trusted signers of plugin
// bundles, docs/bundles.md) and one table per plugin,
// `[plugins.<name>]`, laid over that plugin's manifest `[config]` key by key: the admin's settings
// (the lxc plugin's template storages, the key directories the wireguard plugin may read) belong to
// the host, not to the plugin's package. It decides what the root core reads, so only root may write it.

/** Where the core reads its configuration when neither --config nor OP_DBUS_CONFIG says. */
export const DEFAULT_CONFIG_FILE = '/etc/op-dbus/config.toml';

const PluginTables = z.record(
  z.string().regex(/^[a-z][a-z0-9_]*$/, 'a plugin name: lower-case letters, digits and "_"'),
  z.record(z.string(), z.unknown()),
);
/** Where the trusted signers of plugin bundles are when `[bundles] trusted_keys` does not say. */
export const DEFAULT_TRUSTED_KEYS_DIR = '/etc/op-dbus/trusted-keys';

const BundlesTable = z.strictObject({
  /** A directory of Ed25519 public keys (PEM): a bundle must be signed by one of them. */
  trusted_keys: z.string().startsWith('/', 'an absolute path').optional(),
});
const CoreConfigFile = z.strictObject({
  plugins: PluginTables.default({}),
  bundles: BundlesTable.default({}),
});

export interface CoreConfig {
  /** The file it was read from, or undefined when none exists (defaults). */
  readonly file: string | undefined;
  /** `[plugins.<name>]`: laid over the manifest's `[config]` of that plugin. */
  readonly plugins: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** `[bundles]`: the trusted keys of plugin bundles (absent: DEFAULT_TRUSTED_KEYS_DIR). */
  readonly bundles?: { readonly trustedKeys: string };
}

/** Reads the core's configuration file; a missing default file is the defaults, anything else wrong is an error naming where. */
export function readCoreConfig(file: string | undefined): CoreConfig {
  const path = file ?? DEFAULT_CONFIG_FILE;
  if (file === undefined && !existsSync(path)) return { file: undefined, plugins: {} };
  const why = untrustedBecause(path, 'file');
  if (why !== undefined)
    throw new OpError('InvalidArgument', `core configuration ${path} not read: ${why}`, { file: path });
  return parseCoreConfig(readFileSync(path, 'utf8'), path);
}

/** Parses the configuration's text; errors name the file and line/column (TOML) or the key (schema). */
export function parseCoreConfig(text: string, file: string): CoreConfig {
  const data = readTomlOrThrow(text, file, CoreConfigFile);
  return {
    file,
    plugins: data.plugins,
    bundles: { trustedKeys: data.bundles.trusted_keys ?? DEFAULT_TRUSTED_KEYS_DIR },
  };
}

/** A plugin's effective `[config]`: its manifest's, with the core configuration's table laid over it key by key. */
export function pluginConfig(
  manifestConfig: Readonly<Record<string, unknown>>,
  core: CoreConfig,
  plugin: string,
): Record<string, unknown> {
  return { ...manifestConfig, ...core.plugins[plugin] };
}
