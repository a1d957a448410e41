import { z } from 'zod';
import { OpError } from '../../common/contract/index.js';
import { readTomlOrThrow } from '../../common/text/toml.js';

/** Seconds a plugin call may take when its manifest says nothing (`[limits] deadline_s`). */
export const DEFAULT_DEADLINE_S = 120;

const PLUGIN_NAME = /^[a-z][a-z0-9_]{0,62}$/;
const BUS_NAME =
  /^(:[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+|[A-Za-z_-][A-Za-z0-9_-]*(\.[A-Za-z_-][A-Za-z0-9_-]*)+)$/;
const INTERFACE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$/;
const MEMBER = /^([A-Za-z_][A-Za-z0-9_]*|\*)$/;
const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
/** A file of the plugin's own directory: no separators, no `..`. */
const OWN_FILE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** One `[[permissions.dbus]]` entry: what the plugin may call on one bus name and interface. */
const DbusPermission = z
  .object({
    name: z.string().regex(BUS_NAME, 'a D-Bus bus name, e.g. "org.freedesktop.hostname1"'),
    interface: z.string().regex(INTERFACE, 'a D-Bus interface name'),
    /** Object paths the calls may address (exact, or a prefix ending in "/*"); all when absent. */
    paths: z.array(z.string().regex(/^\/[A-Za-z0-9_/]*(\/\*)?$|^\/\*$/, 'an object path')).optional(),
    /** Methods of the interface it may call; "*" for all. */
    methods: z.array(z.string().regex(MEMBER, 'a D-Bus member name or "*"')).default([]),
    /** Signals of the interface it may receive (PluginBus.listen); "*" for all. */
    signals: z.array(z.string().regex(MEMBER, 'a D-Bus member name or "*"')).optional(),
    /** Its properties through org.freedesktop.DBus.Properties: Get/GetAll (read), and Set (readwrite). */
    properties: z.enum(['none', 'read', 'readwrite']).default('none'),
  })
  .strict();
export type DbusPermission = z.infer<typeof DbusPermission>;

const boolean = z.boolean().optional();
const names = z.array(z.string()).default([]);

/**
 * plugin.toml: the original project's format (DESIGN.md section 3) plus what the core needs to run
 * a plugin safely: `[permissions]` (the bus calls it may make), `[limits]` (its deadline) and, in
 * `[plugin]`, its entry module and schema file.
 */
export const ManifestFile = z
  .object({
    plugin: z
      .object({
        name: z.string().regex(PLUGIN_NAME, 'lower-case letters, digits and "_", starting with a letter'),
        version: z.string().regex(SEMVER, 'a semantic version, e.g. "1.0.0"'),
        author: z.string().optional(),
        description: z.string().optional(),
        source: z.enum(['hand-written', 'auto-generated']).default('hand-written'),
        dbus_service: z.string().optional(),
        dbus_path: z.string().optional(),
        dbus_interface: z.string().optional(),
        read_only: boolean,
        requires_root: boolean,
        requires_proxmox: boolean,
        /** The JavaScript module whose default export is the plugin (a file of this directory). */
        entry: z.string().regex(OWN_FILE, 'a file name in the plugin directory').default('index.js'),
        /** A JSON Schema file of this directory for the section; else the module exports `schema`. */
        schema: z.string().regex(OWN_FILE, 'a file name in the plugin directory').optional(),
      })
      .strict(),
    capabilities: z
      .object({ query: boolean, apply: boolean, rollback: boolean, checkpoint: boolean, verify: boolean })
      .strict()
      .optional(),
    dependencies: z
      .object({ plugins: names, packages: names, dbus_services: names })
      .strict()
      .default({ plugins: [], packages: [], dbus_services: [] }),
    permissions: z
      .object({ dbus: z.array(DbusPermission).default([]) })
      .strict()
      .default({ dbus: [] }),
    /**
     * What an isolated (community or generated) plugin may write besides its own directory: these
     * absolute directories, bound read-write into its sandbox. It writes them as its unprivileged user.
     */
    isolation: z
      .object({
        write: z
          .array(
            z
              .string()
              .regex(/^\/[^\0]*$/, 'an absolute directory')
              .refine((d) => !d.split('/').includes('..'), 'no ".."'),
          )
          .default([]),
      })
      .strict()
      .default({ write: [] }),
    limits: z
      .object({ deadline_s: z.number().positive().max(3600).default(DEFAULT_DEADLINE_S) })
      .strict()
      .default({ deadline_s: DEFAULT_DEADLINE_S }),
    config: z.record(z.string(), z.unknown()).default({}),
    metadata: z
      .object({ homepage: z.string().optional(), license: z.string().optional(), keywords: names })
      .strict()
      .optional(),
  })
  .strict();
export type ManifestFile = z.infer<typeof ManifestFile>;

/** Reads plugin.toml text; errors name the file and the line/column (TOML) or the key path (schema). */
export function parseManifest(text: string, file: string): ManifestFile {
  const manifest = readTomlOrThrow(text, file, ManifestFile);
  if (manifest.dependencies.plugins.includes(manifest.plugin.name)) {
    throw new OpError('SchemaError', `${file}: dependencies.plugins: a plugin cannot come after itself`, {
      file,
    });
  }
  return manifest;
}
