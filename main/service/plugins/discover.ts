import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { isSea } from 'node:sea';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { OpError } from '../../common/contract/index.js';
import type { JsonSchema, PluginModule, StatePlugin } from '../../sdk/index.js';
import { parseIntrospection } from '../../common/generated/introspection.js';
import { parseMapping } from '../../common/generated/mapping.js';
import { buildSpec, writableKeys } from '../../common/generated/spec.js';
import { IsolatedPlugin } from '../isolation/isolated-plugin.js';
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
  /** Built-ins run in the core; generated and community plugins in an isolated child process. */
  isolation?: 'in-process' | 'out-of-process';
  /** Whether it can change anything, and why not when it cannot (a generated plugin without a mapping). */
  writable?: boolean;
  readOnlyBecause?: string;
  /** The bus name it drives, for a generated plugin. */
  service?: string;
  /** Its child process, for an isolated plugin. */
  isolated?: IsolatedPlugin;
}

/** A directory or plugin the core did not load, and why (named in `plugin list`). */
export interface PluginRefusal {
  dir: string;
  name?: string;
  reason: string;
  /** Set when it was found and is listed without being loaded (a generated plugin a built-in owns). */
  listed?: { version: string; source: PluginSource; manifest: ManifestFile };
}

/** One place plugins are found, and where they come from: discovery reads the sources in order. */
export interface PluginSourceDir {
  root: string;
  source: PluginSource;
  /** Whether the installation vouches for it; else only directories and files root alone can change are read. */
  trusted: boolean;
}

/** Files of a generated plugin's directory, beside its plugin.toml. */
export const INTROSPECTION_FILE = 'introspection.xml';
export const MAPPING_FILE = 'semantic-mapping.toml';

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
 * Where plugins are found, in order: the installation's built-ins, its generated plugins (data only:
 * plugin.toml, introspection XML, a semantic mapping), then the directories of the plugin path.
 */
export function pluginSources(o: { builtinDir: string; pluginPath: readonly string[] }): PluginSourceDir[] {
  return [
    { root: o.builtinDir, source: 'built-in', trusted: true },
    { root: join(o.builtinDir, 'generated'), source: 'generated', trusted: true },
    ...o.pluginPath.map((p) => ({ root: resolve(p), source: 'community' as const, trusted: false })),
  ];
}

/**
 * Finds every plugin through its plugin.toml, reading the sources in order. Built-ins are loaded
 * into the core; generated and community plugins run out of process (isolated-plugin.ts). Code from
 * an untrusted source is read only from directories and files that root alone can change; anything
 * else is refused, with why.
 */
export async function discoverPlugins(o: {
  builtinDir: string;
  pluginPath: readonly string[];
  /** The core's data dir: isolated plugins' own directories live below it, and it is hidden from them. */
  dataDir?: string;
  sources?: PluginSourceDir[];
  /** Plugin directories of installed bundles (their active versions): community plugins too. */
  installed?: readonly string[];
}): Promise<Discovery> {
  const plugins: PluginRecord[] = [];
  const refused: PluginRefusal[] = [];
  const dataDir = o.dataDir ?? join(tmpdir(), 'op-dbus-plugin-state');
  const take = async (dir: string, source: PluginSource, trusted: boolean): Promise<void> => {
    let record: PluginRecord;
    try {
      record = await loadPlugin(dir, source, trusted, dataDir, plugins);
    } catch (e) {
      if (e instanceof Listed) {
        refused.push(e.refusal);
        return;
      }
      refused.push({ dir, reason: e instanceof Error ? e.message : String(e) });
      return;
    }
    const twin = plugins.find((p) => p.name === record.name);
    if (twin !== undefined) {
      record.isolated?.close();
      refused.push({
        dir,
        name: record.name,
        reason: `a ${twin.source} plugin ${record.name} is already loaded from ${twin.dir}`,
      });
      return;
    }
    plugins.push(record);
  };
  for (const src of o.sources ?? pluginSources(o)) {
    if (!src.trusted) {
      const why = untrustedBecause(src.root, 'directory');
      if (why !== undefined) {
        refused.push({ dir: src.root, reason: `not read: ${why}` });
        continue;
      }
    }
    for (const dir of pluginDirs(src.root)) {
      const untrusted = src.trusted ? undefined : untrustedBecause(dir, 'directory');
      if (untrusted !== undefined) refused.push({ dir, reason: `not read: ${untrusted}` });
      else await take(dir, src.source, src.trusted);
    }
  }
  // installed bundles are community plugins: checked like the plugin path, and isolated
  for (const dir of o.installed ?? []) {
    const untrusted = untrustedBecause(dir, 'directory');
    if (untrusted !== undefined) refused.push({ dir, reason: `not read: ${untrusted}` });
    else await take(dir, 'community', false);
  }
  return { plugins, refused };
}

/** Where isolated plugins' own directories are: beside the core's data dir, `<data dir>-plugin-state/`. */
export function stateRoot(dataDir: string): string {
  return join(dirname(resolve(dataDir)), `${basename(resolve(dataDir))}-plugin-state`);
}

/** A plugin found and listed, but not loaded. */
class Listed extends Error {
  constructor(readonly refusal: PluginRefusal) {
    super(refusal.reason);
  }
}

/** Subdirectories of root that hold a plugin.toml, sorted by name (so the order is stable). */
function pluginDirs(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, d.name, MANIFEST)))
    .map((d) => join(root, d.name))
    .sort();
}

async function loadPlugin(
  dir: string,
  declared: PluginSource,
  trusted: boolean,
  dataDir: string,
  loaded: readonly PluginRecord[],
): Promise<PluginRecord> {
  const manifestFile = join(dir, MANIFEST);
  const files = (name: string): string => {
    const file = join(dir, name);
    if (!trusted) {
      const why = untrustedBecause(file, 'file');
      if (why !== undefined) throw new OpError('PluginUnavailable', `not loaded: ${why}`, { file });
    }
    return file;
  };
  const manifest = parseManifest(readFileSync(files(MANIFEST), 'utf8'), manifestFile);
  const name = manifest.plugin.name;
  const source: PluginSource =
    manifest.plugin.source === 'auto-generated' && declared !== 'built-in' ? 'generated' : declared;
  const isolation = (
    kind: 'community' | 'generated',
    start: ConstructorParameters<typeof IsolatedPlugin>[0]['start'],
  ): IsolatedPlugin =>
    new IsolatedPlugin({
      name,
      start,
      readable: [dir],
      writable: manifest.isolation.write,
      // beside the data dir (0700, which the plugin's user cannot cross), hidden from every other plugin
      stateDir: join(stateRoot(dataDir), name),
      hidden: [dataDir, stateRoot(dataDir)],
    });
  if (source === 'generated') {
    const xmlFile = files(INTROSPECTION_FILE);
    const xml = parseIntrospection(readFileSync(xmlFile, 'utf8'), {
      file: xmlFile,
      ...(manifest.plugin.dbus_path !== undefined ? { path: manifest.plugin.dbus_path } : {}),
    });
    if (!xml.ok)
      throw new OpError('ParseError', `plugin ${name}: ${xml.error.message}`, {
        plugin: name,
        file: xmlFile,
        ...(xml.error.line !== undefined ? { line: xml.error.line, column: xml.error.column } : {}),
      });
    const service = manifest.plugin.dbus_service;
    if (service === undefined)
      throw new OpError(
        'SchemaError',
        `${manifestFile}: plugin.dbus_service: a generated plugin names its bus name`,
        { plugin: name, file: manifestFile },
      );
    const owner = loaded.find((p) => p.source === 'built-in' && p.manifest.plugin.dbus_service === service);
    if (owner !== undefined) {
      throw new Listed({
        dir,
        name,
        reason: `not loaded: the built-in plugin ${owner.name} owns ${service}`,
        listed: { version: manifest.plugin.version, source, manifest },
      });
    }
    const mappingFile = join(dir, MAPPING_FILE);
    let mapping;
    if (existsSync(mappingFile)) {
      const r = parseMapping(readFileSync(files(MAPPING_FILE), 'utf8'), mappingFile);
      if (!r.ok)
        throw new OpError('ParseError', `plugin ${name}: ${r.error.message}`, {
          plugin: name,
          file: mappingFile,
          ...(r.error.line !== undefined ? { line: r.error.line, column: r.error.column } : {}),
          ...(r.error.pointer !== undefined ? { pointer: r.error.pointer } : {}),
        });
      mapping = r.value;
    }
    const built = buildSpec(xml.value, { service, name, ...(mapping !== undefined ? { mapping } : {}) });
    if (!built.ok)
      throw new OpError('SchemaError', `plugin ${name}: ${mappingFile}: ${built.message}`, {
        plugin: name,
        file: mappingFile,
        ...(built.pointer !== undefined ? { pointer: built.pointer } : {}),
      });
    const writable = writableKeys(built.spec);
    const isolated = isolation('generated', { kind: 'generated', spec: built.spec });
    return {
      name,
      version: manifest.plugin.version,
      source,
      dir,
      manifest,
      schema: built.schema,
      impl: isolated.impl,
      isolation: 'out-of-process',
      writable: writable.length > 0,
      ...(writable.length === 0
        ? {
            readOnlyBecause:
              mapping === undefined ? `no ${MAPPING_FILE}: read-only` : 'its mapping names no apply_method',
          }
        : {}),
      service,
      isolated,
    };
  }
  const entry = files(entryFile(dir, manifest.plugin.entry));
  if (source === 'community') {
    const isolated = isolation('community', { kind: 'community', entry });
    let described: { methods: string[]; schema: unknown };
    try {
      described = await isolated.describe(Math.min(manifest.limits.deadline_s, 20) * 1000);
    } catch (e) {
      isolated.close();
      throw new OpError(
        'PluginUnavailable',
        `plugin ${name}: ${e instanceof Error ? e.message : String(e)}`,
        { plugin: name, file: entry },
      );
    }
    const missing = METHODS.filter((m) => !described.methods.includes(m));
    if (missing.length > 0) {
      isolated.close();
      throw new OpError(
        'PluginUnavailable',
        `plugin ${name}: its entry ${manifest.plugin.entry} lacks ${missing.join(', ')}`,
        { plugin: name, file: entry },
      );
    }
    const schema =
      manifest.plugin.schema !== undefined
        ? readSchemaFile(files(manifest.plugin.schema), name)
        : described.schema;
    if (schema === undefined || typeof schema !== 'object' || schema === null) {
      isolated.close();
      throw new OpError(
        'PluginUnavailable',
        `plugin ${name}: no section schema (name a file in [plugin] schema, or export schema)`,
        { plugin: name },
      );
    }
    return {
      name,
      version: manifest.plugin.version,
      source,
      dir,
      manifest,
      schema: schema as JsonSchema,
      impl: isolated.impl,
      isolation: 'out-of-process',
      writable: manifest.plugin.read_only !== true,
      isolated,
    };
  }
  const mod = await importEntry(entry);
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
  return {
    name,
    version: manifest.plugin.version,
    source,
    dir,
    manifest,
    schema,
    impl,
    isolation: 'in-process',
    writable: manifest.plugin.read_only !== true,
  };
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
