import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

// Templates as Proxmox names them: `<storage>:vztmpl/<file>`, a rootfs tarball (zst, xz or gz) in a
// storage, which is a directory named in the core's configuration (`[plugins.lxc] storages`). The
// file is looked up in `<dir>/vztmpl/` and, for a Proxmox directory storage, `<dir>/template/cache/`.

export const TEMPLATE_ID = /^([A-Za-z][A-Za-z0-9_.-]*):vztmpl\/([A-Za-z0-9][A-Za-z0-9_.+-]*)$/;
const FORMATS: [RegExp, string][] = [
  [/\.tar\.zst$/, 'zst'],
  [/\.tar\.xz$/, 'xz'],
  [/\.(tar\.gz|tgz)$/, 'gz'],
];

/** The compression of a template file, from its name; undefined when it is not a template. */
export function templateFormat(file: string): string | undefined {
  return FORMATS.find(([re]) => re.test(file))?.[1];
}

/** The storages of the plugin's config, checked (name → absolute directory). */
export function storagesOf(config: Readonly<Record<string, unknown>>): Record<string, string> {
  const raw = config['storages'];
  const out: Record<string, string> = {};
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return out;
  for (const [name, dir] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof dir === 'string' && dir.startsWith('/')) out[name] = dir;
  }
  return out;
}

/** Where a template id's file is on this host, or why it cannot be used. */
export function resolveTemplate(
  id: string,
  storages: Readonly<Record<string, string>>,
): { file: string; format: string } | { error: string } {
  const m = TEMPLATE_ID.exec(id);
  if (m?.[1] === undefined || m[2] === undefined)
    return { error: `template "${id}" is not a Proxmox template id (storage:vztmpl/file.tar.zst)` };
  const [, storage, name] = m;
  const dir = storages[storage];
  if (dir === undefined) {
    const known = Object.keys(storages);
    return {
      error: `template "${id}": unknown storage "${storage}" (this host's storages: ${known.join(', ') || 'none'}; [plugins.lxc] storages in the core's configuration)`,
    };
  }
  const format = templateFormat(name);
  if (format === undefined) return { error: `template "${id}": not a .tar.zst, .tar.xz or .tar.gz file` };
  for (const file of [join(dir, 'vztmpl', name), join(dir, 'template', 'cache', name)]) {
    try {
      if (statSync(file).isFile()) return { file, format };
    } catch {
      // not there: the next place
    }
  }
  return { error: `template "${id}": no file ${name} in storage ${storage} (${join(dir, 'vztmpl')})` };
}

export interface TemplateInfo {
  id: string;
  size: number;
  format: string;
}

/** Every template each storage holds, sorted by id. */
export function listTemplates(storages: Readonly<Record<string, string>>): TemplateInfo[] {
  const out: TemplateInfo[] = [];
  for (const [storage, dir] of Object.entries(storages)) {
    for (const sub of [join(dir, 'vztmpl'), join(dir, 'template', 'cache')]) {
      if (!existsSync(sub)) continue;
      for (const name of readdirSync(sub)) {
        const format = templateFormat(name);
        if (format === undefined) continue;
        const st = statSync(join(sub, name));
        if (!st.isFile()) continue;
        const id = `${storage}:vztmpl/${name}`;
        if (!out.some((t) => t.id === id)) out.push({ id, size: st.size, format });
      }
    }
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}
