// The build's second step: tsc compiles each built-in plugin's code into dist/plugins/<name>/; the
// files that are data (plugin.toml, JSON Schemas, introspection XML, semantic mappings) are copied beside it.
import { cpSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DATA = /\.(toml|json|xml)$/;
// generated plugins (plugins/generated/<name>/) are data only, one level further down
const copyData = (dir) => {
  for (const entry of readdirSync(join(root, 'plugins', dir), { withFileTypes: true })) {
    const rel = join(dir, entry.name);
    if (entry.isDirectory()) copyData(rel);
    else if (DATA.test(entry.name)) cpSync(join(root, 'plugins', rel), join(root, 'dist/plugins', rel));
  }
};
copyData('.');
