import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { isSea } from 'node:sea';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { OpError } from '../../common/contract/index.js';
import type { JsonSchema, PluginModule, StatePlugin } from '../../sdk/index.js';
import { parseManifest, type ManifestFile } from './manifest.js';
import { untrustedBecause } from './trust.js';

/** Where a plugin comes from, as `plugin list` says it. */
export type PluginSource = 'built-in' | 'generated' | 'community';

/** A plugin found through its manifest and loaded: what the registry holds. */
export interface PluginRecord {
  name: string;
  version: string;
  source: PluginSource;
  dir: string;
  manifest: ManifestFile;
  schema: JsonSchema;
  impl: StatePlugin;
}

/** A directory or plugin the core did not load, and why (named in `plugin list`). */
export interface PluginRefusal {
  dir: string;
  name?: string;
  reason: string;
}

export interface Discovery {
  plugins: PluginRecord[];
  refused: PluginRefusal[];
}

const MANIFEST = 'plugin.toml';
const METHODS = ['available', 'query', 'diff', 'checkpoint', 'apply', 'verify', 'rollback'] as const;

/** The built-in plugins' directory of this installation: beside the binary when packaged, else `plugins/` of the tree. */
export function builtinPluginDir(): string {
  if (isSea()) return join(dirname(process.execPath), 'plugins');
  // from main/service/plugins/ (sources, tests) or dist/main/service/plugins/ (the build): three levels up
  return fileURLToPath(new URL('../../../plugins/', import.meta.url));
}

/** The directories of OP_DBUS_PLUGIN_PATH (colon-separated, empty entries ignored). */
export function pluginPathFromEnv(value: string | undefined): string[] {
  return (value ?? '').split(':').filter((d) => d !== '');
}

/**
 * Finds every plugin: built-in ones under builtinDir, community ones in the directories of the
 * plugin path and the active versions of installed bundles, each through its plugin.toml. Community code runs as root in the core, so only
 * directories and files that root alone can change are read; anything else is refused, with why.
 */
export async function discoverPlugins(o: {
  builtinDir: string;
  pluginPath: readonly string[];
  /** Plugin directories of installed bundles (their active versions): community plugins too. */
  installed?: readonly string[];
}): Promise<Discovery> {
  const plugins: PluginRecord[] = [];
  const refused: PluginRefusal[] = [];
  const take = async (dir: string, source: PluginSource): Promise<void> => {
    let record: PluginRecord;
    try {
      record = await loadPlugin(dir, source);
    } catch (e) {
      refused.push({ dir, reason: e instanceof Error ? e.message : String(e) });
      return;
    }
    const twin = plugins.find((p) => p.name === record.name);
    if (twin !== undefined) {
      refused.push({
        dir,
        name: record.name,
        reason: `a ${twin.source} plugin ${record.name} is already loaded from ${twin.dir}`,
      });
      return;
    }
    plugins.push(record);
  };
  for (const dir of pluginDirs(o.builtinDir)) await take(dir, 'built-in');
  for (const entry of o.pluginPath) {
    const root = resolve(entry);
    const why = untrustedBecause(root, 'directory');
    if (why !== undefined) {
      refused.push({ dir: root, reason: `not read: ${why}` });
      continue;
    }
    for (const dir of pluginDirs(root)) {
      const untrusted = untrustedBecause(dir, 'directory');
      if (untrusted !== undefined) refused.push({ dir, reason: `not read: ${untrusted}` });
      else await take(dir, 'community');
    }
  }
  for (const dir of o.installed ?? []) {
    const untrusted = untrustedBecause(dir, 'directory');
    if (untrusted !== undefined) refused.push({ dir, reason: `not read: ${untrusted}` });
    else await take(dir, 'community');
  }
  return { plugins, refused };
}

/** Subdirectories of root that hold a plugin.toml, sorted by name (so the order is stable). */
function pluginDirs(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, d.name, MANIFEST)))
    .map((d) => join(root, d.name))
    .sort();
}

async function loadPlugin(dir: string, source: PluginSource): Promise<PluginRecord> {
  const manifestFile = join(dir, MANIFEST);
  const files = (name: string): string => {
    const file = join(dir, name);
    if (source === 'community') {
      const why = untrustedBecause(file, 'file');
      if (why !== undefined) throw new OpError('PluginUnavailable', `not loaded: ${why}`, { file });
    }
    return file;
  };
  const manifest = parseManifest(readFileSync(files(MANIFEST), 'utf8'), manifestFile);
  const name = manifest.plugin.name;
  const mod = await importEntry(files(entryFile(dir, manifest.plugin.entry)));
  const impl = mod.plugin;
  const missing = METHODS.filter(
    (m) => typeof (impl as unknown as Record<string, unknown> | undefined)?.[m] !== 'function',
  );
  if (missing.length > 0) {
    throw new OpError(
      'PluginUnavailable',
      `plugin ${name}: its entry ${manifest.plugin.entry} lacks ${missing.join(', ')}`,
      {
        plugin: name,
        file: join(dir, manifest.plugin.entry),
      },
    );
  }
  const schema =
    manifest.plugin.schema !== undefined ? readSchemaFile(files(manifest.plugin.schema), name) : mod.schema;
  if (schema === undefined || typeof schema !== 'object' || schema === null) {
    throw new OpError(
      'PluginUnavailable',
      `plugin ${name}: no section schema (name a file in [plugin] schema, or export schema)`,
      {
        plugin: name,
      },
    );
  }
  return { name, version: manifest.plugin.version, source, dir, manifest, schema, impl };
}

/**
 * The entry module's file. In the source tree (tests run the TypeScript sources) a built-in's
 * `index.js` exists only as `index.ts`.
 */
function entryFile(dir: string, entry: string): string {
  if (
    !existsSync(join(dir, entry)) &&
    entry.endsWith('.js') &&
    existsSync(join(dir, entry.replace(/\.js$/, '.ts')))
  ) {
    return entry.replace(/\.js$/, '.ts');
  }
  return entry;
}

async function importEntry(file: string): Promise<PluginModule> {
  // the packaged single executable loads CommonJS from disk; everything else ES modules
  const loaded: unknown = isSea() ? createRequire(file)(file) : await import(pathToFileURL(file).href);
  const mod = (loaded as { default?: unknown }).default ?? loaded;
  if (typeof mod !== 'object' || mod === null || !('plugin' in mod)) {
    throw new OpError('PluginUnavailable', `${file} has no default export { plugin, schema? }`, { file });
  }
  return mod as PluginModule;
}

function readSchemaFile(file: string, plugin: string): JsonSchema {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as JsonSchema;
  } catch (e) {
    throw new OpError(
      'SchemaError',
      `plugin ${plugin}: ${file}: ${e instanceof Error ? e.message : String(e)}`,
      { plugin, file },
    );
  }
}
