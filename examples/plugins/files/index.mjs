// The `files` example plugin (docs/plugins.md): manages text files under the directory its manifest
// names in [config] root. Plain JavaScript with no dependencies, so it runs from any directory of
// OP_DBUS_PLUGIN_PATH; the types in the comments are those of the SDK (main/sdk/index.ts).
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';

const DEFAULT_MODE = '0644';

/** The document's JSON pointer to the file at path (its "/" and "~" escaped). */
function pointerOf(path) {
  return `/plugins/files/files/${path.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/** @param {import('../../../main/sdk/index.js').PluginContext} ctx */
function rootOf(ctx) {
  const root = ctx.config['root'];
  if (typeof root !== 'string' || !root.startsWith('/')) {
    throw new Error('[config] root must be an absolute directory');
  }
  return root;
}

/**
 * The file at path under root, refusing any symbolic link on the way: a link planted under the root
 * must not make the plugin (which runs as root) write or read outside it.
 */
function fileAt(root, path) {
  const full = join(root, path);
  if (relative(root, full).startsWith('..')) throw new Error(`${path} is outside ${root}`);
  for (let d = full; d !== root && d.startsWith(root + sep); d = dirname(d)) {
    try {
      if (lstatSync(d).isSymbolicLink())
        throw new Error(`${join(root, relative(root, d))} is a symbolic link; refusing`);
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
    }
  }
  return full;
}

/**
 * The file as the section describes it, or undefined when it does not exist. A file other users may
 * not read is reported as secret_content, which the schema marks secret: the engine redacts it
 * before the state reaches a plan, the audit log or the console.
 */
function readEntry(root, path) {
  const full = fileAt(root, path);
  try {
    const st = lstatSync(full);
    if (!st.isFile()) throw new Error(`${full} is not a regular file`);
    const text = readFileSync(full, 'utf8');
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    return (st.mode & 0o004) !== 0 ? { content: text, mode } : { secret_content: text, mode };
  } catch (e) {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Every regular file under root, as relative paths. */
function listFiles(root, dir = root) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (e.code === 'ENOENT') return [];
    throw e;
  }
  return entries.flatMap((e) =>
    e.isDirectory()
      ? listFiles(root, join(dir, e.name))
      : e.isFile()
        ? [relative(root, join(dir, e.name))]
        : [],
  );
}

function wanted(spec) {
  return { content: spec.content ?? spec.secret_content, mode: (spec.mode ?? DEFAULT_MODE).padStart(4, '0') };
}

/** Whether the file on disk (as readEntry reports it) is what spec asks for. */
function matches(entry, spec) {
  const w = wanted(spec);
  return (
    entry !== undefined && (entry.content ?? entry.secret_content) === w.content && entry.mode === w.mode
  );
}

/** Writes atomically (a temporary file renamed over the old one), with the mode set before it appears. */
function writeEntry(root, path, entry) {
  const full = fileAt(root, path);
  mkdirSync(dirname(full), { recursive: true, mode: 0o755 });
  const tmp = `${full}.op-dbus-tmp`;
  writeFileSync(tmp, entry.content, { mode: Number.parseInt(entry.mode, 8) });
  renameSync(tmp, full);
}

/** @type {import('../../../main/sdk/index.js').StatePlugin} */
const plugin = {
  async available(ctx) {
    const root = rootOf(ctx);
    try {
      if (!lstatSync(root).isDirectory()) return { available: false, reason: `${root} is not a directory` };
    } catch {
      return { available: false, reason: `${root} does not exist (create it, or set [config] root)` };
    }
    return { available: true };
  },

  async query(ctx) {
    const root = rootOf(ctx);
    const files = {};
    for (const path of listFiles(root)) files[path] = readEntry(root, path);
    return { files };
  },

  async diff(current, desired) {
    const resources = [];
    const have = current.files ?? {};
    const want = desired.files ?? {};
    for (const [path, spec] of Object.entries(want)) {
      const w = wanted(spec);
      const h = have[path];
      const pointer = pointerOf(path);
      if (matches(h, spec)) {
        resources.push({ id: path, action: 'noop', changes: [] });
        continue;
      }
      // the value shown is the section's own (secret_content stays under its secret key, so it is redacted)
      const after = { ...spec, mode: w.mode };
      resources.push({
        id: path,
        action: h === undefined ? 'create' : 'modify',
        changes: [{ path: pointer, before: h, after }],
      });
    }
    if (desired.prune === true) {
      for (const path of Object.keys(have)) {
        if (Object.hasOwn(want, path)) continue;
        const pointer = pointerOf(path);
        resources.push({
          id: path,
          action: 'delete',
          changes: [{ path: pointer, before: have[path], after: undefined }],
        });
      }
    }
    return { resources };
  },

  async checkpoint(desired, ctx) {
    const root = rootOf(ctx);
    const paths = new Set(Object.keys(desired.files ?? {}));
    if (desired.prune === true) for (const p of listFiles(root)) paths.add(p);
    const before = {};
    for (const path of paths) before[path] = readEntry(root, path) ?? null;
    return { files: before };
  },

  async apply(diff, desired, ctx) {
    const root = rootOf(ctx);
    let changed = 0;
    for (const r of diff.resources) {
      if (r.action === 'noop') continue;
      ctx.signal.throwIfAborted();
      if (r.action === 'delete') rmSync(fileAt(root, r.id), { force: true });
      else writeEntry(root, r.id, wanted(desired.files[r.id]));
      ctx.progress(`${r.action} ${r.id}`);
      changed++;
    }
    return { changed };
  },

  async verify(desired, ctx) {
    const root = rootOf(ctx);
    const drift = [];
    for (const [path, spec] of Object.entries(desired.files ?? {})) {
      const w = wanted(spec);
      const h = readEntry(root, path);
      const pointer = pointerOf(path);
      if (!matches(h, spec)) {
        drift.push({ path: pointer, expected: { ...spec, mode: w.mode }, actual: h ?? null });
      }
    }
    if (desired.prune === true) {
      for (const path of listFiles(root)) {
        if (!Object.hasOwn(desired.files ?? {}, path)) {
          drift.push({
            path: pointerOf(path),
            expected: null,
            actual: readEntry(root, path),
          });
        }
      }
    }
    return { drift };
  },

  async rollback(checkpoint, ctx) {
    const root = rootOf(ctx);
    for (const [path, was] of Object.entries(checkpoint.files)) {
      if (was === null) rmSync(fileAt(root, path), { force: true });
      else writeEntry(root, path, wanted(was));
    }
  },
};

export default { plugin };
