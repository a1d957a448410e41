// Packages op-dbus (CLI and core) as a Node single-executable application, for hosts whose
// distribution Node is older or absent: one binary (this machine's Node 20 with our bundle injected)
// and, beside it, the native addon it loads from disk (better-sqlite3, built for the same Node ABI).
// Usage: node build/package/package-core.mjs [outDir]   (after `npm run build`)
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

// native addons are loaded from disk beside the binary; each with the files it needs at run time
const NATIVE = ['better-sqlite3', 'zstd-napi'];
const NATIVE_FILES = {
  'better-sqlite3': ['package.json', 'lib', 'LICENSE', 'build/Release/better_sqlite3.node'],
  'zstd-napi': ['package.json', 'binding.js', 'dist', 'LICENSE', 'NOTICE', 'build/Release/binding.node'],
};
const NATIVE_DEPENDENCIES = ['bindings', 'file-uri-to-path'];
// the audit log's worker threads (its writer, verify and its walkers): scripts on disk beside the binary
const WORKERS = ['append-worker', 'verify-log-worker', 'verify-worker'];

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const out = resolve(process.argv[2] ?? join(root, 'dist/package/op-dbus'));
const work = join(root, 'dist/package/work');
const entry = join(root, 'dist/main/op-dbus.js');
if (!existsSync(entry)) throw new Error(`${entry} is missing: run npm run build first`);

rmSync(out, { recursive: true, force: true });
rmSync(work, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
mkdirSync(work, { recursive: true });

// What every bundle here shares: CommonJS for Node 20, the native addons loaded from disk, and
// import.meta.url / import.meta.dirname taken from variables each bundle's banner sets.
const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  // ESM builds first: jsonc-parser's UMD build requires its parts at run time, which a bundle cannot follow
  mainFields: ['module', 'main'],
  target: 'node20',
  // x11: dbus-next's session-bus discovery through X11, never used for the system bus
  external: [...NATIVE, 'usocket', 'x11'],
  define: { 'import.meta.url': 'importMetaUrl', 'import.meta.dirname': 'importMetaDirname' },
  logLevel: 'warning',
};

// A single-executable application runs one CommonJS script whose require() reaches only Node's
// builtins: the banner swaps in a require() that resolves from the binary's own directory.
const bundle = join(work, 'op-dbus.cjs');
await build({
  ...common,
  entryPoints: [entry],
  outfile: bundle,
  banner: {
    js: [
      'var require = require("node:module").createRequire(process.execPath);',
      'var importMetaUrl = require("node:url").pathToFileURL(process.execPath).href;',
      'var importMetaDirname = require("node:path").dirname(process.execPath);',
    ].join('\n'),
  },
});

// Each worker as a CommonJS bundle of its own where the core looks for it (compiledWorker: beside the
// module that starts it, which in the binary is the binary). A worker thread runs a file from disk
// with Node's own loader, so its require() finds the addons in node_modules beside it.
await build({
  ...common,
  entryPoints: Object.fromEntries(WORKERS.map((w) => [w, join(root, 'dist/main/service/audit', `${w}.js`)])),
  outdir: out,
  banner: {
    js: [
      'var importMetaUrl = require("node:url").pathToFileURL(__filename).href;',
      'var importMetaDirname = __dirname;',
    ].join('\n'),
  },
});
// The built-in plugins, each a CommonJS bundle (its SDK helpers and libraries inside) with its data
// files beside it, where the core's discovery looks in the binary (plugins/ beside it).
const pluginsDist = join(root, 'dist/plugins');
// a directory with code (index.js); plugins/generated/ holds data-only plugins (manifest, XML, mapping)
const builtins = readdirSync(pluginsDist, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(pluginsDist, d.name, 'index.js')))
  .map((d) => d.name);
await build({
  ...common,
  entryPoints: Object.fromEntries(
    builtins.map((p) => [`plugins/${p}/index`, join(pluginsDist, p, 'index.js')]),
  ),
  outdir: out,
  banner: {
    js: [
      'var importMetaUrl = require("node:url").pathToFileURL(__filename).href;',
      'var importMetaDirname = __dirname;',
    ].join('\n'),
  },
});
for (const p of builtins) {
  for (const f of readdirSync(join(pluginsDist, p))) {
    if (/\.(toml|json|xml)$/.test(f)) copyFileSync(join(pluginsDist, p, f), join(out, 'plugins', p, f));
  }
}
// the generated plugins are data only: copied as they are (their code is the core's generic runtime)
if (existsSync(join(pluginsDist, 'generated'))) {
  cpSync(join(pluginsDist, 'generated'), join(out, 'plugins', 'generated'), {
    recursive: true,
    filter: (src) => !/\.(js|map|d\.ts)$/.test(src),
  });
}
// they are CommonJS wherever the directory lands (a package.json with "type": "module" above it included)
writeFileSync(join(out, 'package.json'), `${JSON.stringify({ private: true, type: 'commonjs' })}\n`);

const blob = join(work, 'sea-prep.blob');
const config = join(work, 'sea-config.json');
writeFileSync(config, JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true }));
execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'inherit' });

const binary = join(out, 'op-dbus');
copyFileSync(process.execPath, binary);
chmodSync(binary, 0o755);
execFileSync(
  process.execPath,
  [
    join(root, 'node_modules/postject/dist/cli.js'),
    binary,
    'NODE_SEA_BLOB',
    blob,
    '--sentinel-fuse',
    'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
  ],
  { stdio: 'inherit' },
);

// the native addons and the small modules they load themselves with, beside the binary
for (const mod of NATIVE_DEPENDENCIES) {
  cpSync(join(root, 'node_modules', mod), join(out, 'node_modules', mod), { recursive: true });
}
for (const mod of NATIVE) {
  for (const part of NATIVE_FILES[mod]) {
    cpSync(join(root, 'node_modules', mod, part), join(out, 'node_modules', mod, part), { recursive: true });
  }
}

// our own addon (affinity, getcpu, mincore, fadvise, inode flags), where native/index.ts looks for it
const addon = join(root, 'native/build/Release/opdbus_native.node');
if (existsSync(addon)) cpSync(addon, join(out, 'native/build/Release/opdbus_native.node'));

// the system integration files, as an installer would place them
cpSync(join(root, 'build/dbus'), join(out, 'build/dbus'), { recursive: true });
cpSync(join(root, 'build/polkit'), join(out, 'build/polkit'), { recursive: true });
cpSync(join(root, 'build/systemd'), join(out, 'build/systemd'), { recursive: true });
rmSync(work, { recursive: true, force: true });
process.stdout.write(`${binary}\n`);
