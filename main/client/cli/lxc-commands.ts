import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { print, withClient, type JsonFlag } from './io.js';

// `op-dbus lxc templates`: what each storage of the lxc plugin holds, as Proxmox names it
// (`<storage>:vztmpl/<file>`). The storages are the core's ([plugins.lxc] storages of its
// configuration, read through Manager1.PluginConfig); the directories are read here.

const FORMATS: [RegExp, string][] = [
  [/\.tar\.zst$/, 'zst'],
  [/\.tar\.xz$/, 'xz'],
  [/\.(tar\.gz|tgz)$/, 'gz'],
];

export interface TemplateEntry {
  id: string;
  size: number;
  format: string;
}

/** The templates in each storage's vztmpl/ (and template/cache/, Proxmox's directory layout), sorted by id. */
export function listStorageTemplates(storages: Readonly<Record<string, unknown>>): TemplateEntry[] {
  const out: TemplateEntry[] = [];
  for (const [storage, dir] of Object.entries(storages)) {
    if (typeof dir !== 'string') continue;
    for (const sub of [join(dir, 'vztmpl'), join(dir, 'template', 'cache')]) {
      if (!existsSync(sub)) continue;
      for (const name of readdirSync(sub)) {
        const format = FORMATS.find(([re]) => re.test(name))?.[1];
        if (format === undefined) continue;
        const st = statSync(join(sub, name));
        const id = `${storage}:vztmpl/${name}`;
        if (st.isFile() && !out.some((t) => t.id === id)) out.push({ id, size: st.size, format });
      }
    }
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

function templatesText(templates: TemplateEntry[]): string {
  if (templates.length === 0) return "No templates in the lxc plugin's storages.";
  const width = Math.max(...templates.map((t) => t.id.length));
  return templates
    .map((t) => `${t.id.padEnd(width)}  ${t.format.padEnd(3)}  ${(t.size / 1024 / 1024).toFixed(1)} MiB`)
    .join('\n');
}

export function lxcCommand(): Command {
  const lxc = new Command('lxc').description('LXC containers: what the lxc plugin can create them from');
  lxc
    .command('templates')
    .description(
      "the templates each storage of the lxc plugin holds (storage:vztmpl/file), from the core's configuration",
    )
    .option('--json', 'machine-readable output')
    .action(async (o: JsonFlag) => {
      const r = await withClient((c) => c.call('PluginConfig', { plugin: 'lxc' }));
      const storages = r.config['storages'];
      const templates = listStorageTemplates(
        storages !== null && typeof storages === 'object' ? (storages as Record<string, unknown>) : {},
      );
      print(o.json, { templates }, templatesText(templates));
    });
  return lxc;
}
