import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { OpError } from '../../common/contract/index.js';
import { callMethod, connectSystemBus } from '../../common/dbus/calls.js';
import { defaultPath, generatePlugin, type GeneratedPlugin } from '../../common/generated/generate.js';
import { print, withClient, type JsonFlag } from './io.js';
import { showText } from './bundle-commands.js';
import { pluginTraits } from './render.js';

// `op-dbus plugin show NAME` and `op-dbus plugin generate BUS-NAME | --from-xml FILE`.

/** Adds show and generate to the `plugin` command. */
export function addPluginCommands(plugin: Command): void {
  plugin
    .command('show [name]')
    .description(
      'one plugin: source, where it runs, permissions, availability, writable or read-only and why, and its installed bundle versions (hash, signer, active); without a name, every installed bundle',
    )
    .option('--json', 'machine-readable output')
    .action(async (name: string | undefined, o: JsonFlag) => {
      if (name === undefined) {
        const all = await withClient((c) => c.call('PluginShow', {}));
        print(o.json, all, showText(all));
        return;
      }
      const r = await withClient((c) => c.call('Plugins', {}));
      const p = r.plugins.find((x) => x.name === name);
      // its bundle versions, where it is one and this user may see them (org.opdbus.manage-plugins)
      const bundle = await withClient((c) => c.call('PluginShow', { name })).catch(() => undefined);
      if (p === undefined && bundle !== undefined && bundle.bundles.length > 0) {
        print(o.json, bundle, showText(bundle));
        return;
      }
      if (p === undefined) {
        throw new OpError(
          'UnknownPlugin',
          `no plugin ${name} (known: ${r.plugins.map((x) => x.name).join(', ')})`,
          { plugin: name },
        );
      }
      const lines = [
        `${p.name} ${p.version} (${pluginTraits(p)})`,
        ...(p.description !== undefined ? [`  ${p.description}`] : []),
        ...(p.service !== undefined ? [`  service: ${p.service}`] : []),
        `  ${p.loaded === false ? 'not loaded' : p.available ? 'available' : 'unavailable'}${p.why_not !== undefined ? `: ${p.why_not}` : ''}`,
        ...(p.read_only_because !== undefined ? [`  read-only: ${p.read_only_because}`] : []),
        `  deadline: ${p.deadline_s} s`,
        ...(p.after.length > 0 ? [`  after: ${p.after.join(', ')}`] : []),
        ...(
          p.permissions.dbus as { name: string; interface: string; methods: string[]; properties: string }[]
        ).map(
          (perm) =>
            `  may call ${perm.name} ${perm.interface}: ${perm.methods.length > 0 ? perm.methods.join(', ') : 'no methods'}; properties ${perm.properties}`,
        ),
        ...p.notes.map((n) => `  note: ${n}`),
      ];
      const installed = bundle !== undefined && bundle.bundles.length > 0;
      if (installed) lines.push(showText(bundle));
      print(o.json, installed ? { ...bundle, plugin: p } : p, lines.join('\n'));
    });

  plugin
    .command('generate [bus-name]')
    .description(
      "a plugin from a service's introspection (on the system bus, or --from-xml FILE without any bus)",
    )
    .option('--from-xml <file>', 'read the introspection XML from a file')
    .option('--path <object-path>', 'the object to introspect (default: the bus name as a path)')
    .option(
      '--mapping <file>',
      'a semantic-mapping.toml: which properties are state and which methods apply them',
    )
    .option(
      '--out <dir>',
      'write the plugin directory <dir>/<name>/ (plugin.toml, introspection.xml, the mapping)',
    )
    .option('--json', 'machine-readable output')
    .action(
      async (
        busName: string | undefined,
        o: JsonFlag & { fromXml?: string; path?: string; mapping?: string; out?: string },
      ) => {
        if ((busName === undefined) === (o.fromXml === undefined))
          throw new OpError('InvalidArgument', 'name a bus name or --from-xml FILE (one of them)', {});
        let xml: string;
        let file: string;
        if (o.fromXml !== undefined) {
          file = o.fromXml;
          xml = readText(file);
        } else {
          const service = busName as string;
          const path = o.path ?? defaultPath(service);
          const bus = await connectSystemBus();
          try {
            const [text] = await callMethod(bus, {
              destination: service,
              path,
              interface: 'org.freedesktop.DBus.Introspectable',
              member: 'Introspect',
            });
            xml = String(text);
          } finally {
            bus.disconnect();
          }
          file = `${service}:${path}`;
        }
        const r = generatePlugin({
          xml,
          file,
          ...(busName !== undefined ? { service: busName } : {}),
          ...(o.path !== undefined
            ? { path: o.path }
            : busName !== undefined
              ? { path: defaultPath(busName) }
              : {}),
          ...(o.mapping !== undefined ? { mapping: { text: readText(o.mapping), file: o.mapping } } : {}),
        });
        if (!r.ok) {
          throw new OpError('ParseError', r.error.message, {
            file: r.error.file,
            ...(r.error.line !== undefined ? { line: r.error.line, column: r.error.column } : {}),
            ...(r.error.pointer !== undefined ? { pointer: r.error.pointer } : {}),
          });
        }
        const g = r.plugin;
        let dir: string | undefined;
        if (o.out !== undefined) {
          dir = join(o.out, g.name);
          mkdirSync(dir, { recursive: true, mode: 0o755 });
          writeFileSync(join(dir, 'plugin.toml'), g.manifest, { mode: 0o644 });
          writeFileSync(join(dir, 'introspection.xml'), xml, { mode: 0o644 });
          if (o.mapping !== undefined)
            writeFileSync(join(dir, 'semantic-mapping.toml'), readText(o.mapping), { mode: 0o644 });
        }
        print(
          o.json,
          { ...summary(g), ...(dir !== undefined ? { dir } : {}), schema: g.schema, manifest: g.manifest },
          text(g, dir),
        );
      },
    );
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new OpError('InvalidArgument', `${file}: ${e instanceof Error ? e.message : String(e)}`, { file });
  }
}

function summary(g: GeneratedPlugin): Record<string, unknown> {
  return {
    name: g.name,
    service: g.service,
    writable: g.writable,
    read_only: g.writable.length === 0,
    counts: g.counts,
  };
}

function text(g: GeneratedPlugin, dir: string | undefined): string {
  return [
    `${g.name}: generated from ${g.service}: ${g.counts.objects} object(s), ${g.counts.interfaces} interface(s), ${g.counts.properties} readable propert${g.counts.properties === 1 ? 'y' : 'ies'}, ${g.counts.methods} method(s)`,
    g.writable.length > 0
      ? `  writable through its mapping: ${g.writable.join(', ')}`
      : '  read-only: no semantic mapping names an apply_method',
    ...(dir !== undefined
      ? [`  written to ${dir}/ (install it in a directory of OP_DBUS_PLUGIN_PATH, owned by root)`]
      : ['  (--out DIR writes the plugin directory; --json prints its schema and plugin.toml)']),
  ].join('\n');
}
