// The build's second step: tsc compiles each built-in plugin's code into dist/plugins/<name>/; the
// files that are data (plugin.toml, JSON Schemas, introspection XML, semantic mappings) are copied beside it.
import { cpSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DATA = /\.(toml|json|xml)$/;
for (const plugin of readdirSync(join(root, 'plugins'), { withFileTypes: true })) {
  if (!plugin.isDirectory()) continue;
  for (const file of readdirSync(join(root, 'plugins', plugin.name))) {
    if (DATA.test(file))
      cpSync(join(root, 'plugins', plugin.name, file), join(root, 'dist/plugins', plugin.name, file));
  }
}
