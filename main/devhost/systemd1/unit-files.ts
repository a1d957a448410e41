import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';

// The stand-in's view of unit files, read the way systemd reads them: a search path of directories
// (the first wins for a name), drop-ins from `<unit>.d/*.conf` in every directory, `[Install]
// WantedBy=/RequiredBy=`, enablement as symlinks in `<target>.wants/` of the writable directory,
// a mask as a symlink to /dev/null there. Only what the stand-in answers about is parsed.

/** What systemd knows of one unit from its files. */
export interface UnitFile {
  name: string;
  /** The unit file it loaded (FragmentPath); "" for a masked unit. */
  fragmentPath: string;
  dropInPaths: string[];
  description: string;
  /** The targets of WantedBy= and RequiredBy= in [Install], as `<target>.wants` / `<target>.requires`. */
  installDirs: string[];
  /** enabled | disabled | static | masked, as UnitFileState. */
  unitFileState: 'enabled' | 'disabled' | 'static' | 'masked';
}

const UNIT_NAME =
  /^[A-Za-z0-9:_.\\@-]+\.(service|socket|target|timer|path|mount|automount|swap|slice|scope|device)$/;

/** Whether name is a unit name systemd would load. */
export function isUnitName(name: string): boolean {
  return name.length <= 255 && UNIT_NAME.test(name);
}

/** Every unit of the search path; writableDir (the host's /etc/systemd/system) comes first. */
export function scanUnits(writableDir: string, searchPath: readonly string[]): Map<string, UnitFile> {
  const dirs = [writableDir, ...searchPath].filter((d) => existsSync(d));
  const fragments = new Map<string, string>();
  const masked = new Set<string>();
  const dropIns = new Map<string, string[]>();
  for (const dir of dirs) {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (entry.endsWith('.d') && isUnitName(entry.slice(0, -2))) {
        const unit = entry.slice(0, -2);
        const confs = safeList(path)
          .filter((f) => f.endsWith('.conf'))
          .map((f) => join(path, f));
        dropIns.set(unit, [...(dropIns.get(unit) ?? []), ...confs]);
        continue;
      }
      if (!isUnitName(entry) || fragments.has(entry) || masked.has(entry)) continue;
      const link = symlinkTarget(path);
      if (link === '/dev/null') {
        masked.add(entry);
        continue;
      }
      if (!isFile(path)) continue;
      fragments.set(entry, path);
    }
  }
  const enabled = enabledUnits(writableDir);
  const units = new Map<string, UnitFile>();
  for (const name of masked) {
    units.set(name, {
      name,
      fragmentPath: '',
      dropInPaths: [],
      description: name,
      installDirs: [],
      unitFileState: 'masked',
    });
  }
  for (const [name, fragmentPath] of fragments) {
    if (units.has(name)) continue;
    const parsed = parseUnitFile(readFileSync(fragmentPath, 'utf8'));
    units.set(name, {
      name,
      fragmentPath,
      dropInPaths: (dropIns.get(name) ?? []).sort(),
      description: parsed.description ?? name,
      installDirs: parsed.installDirs,
      unitFileState: enabled.has(name) ? 'enabled' : parsed.installDirs.length > 0 ? 'disabled' : 'static',
    });
  }
  return units;
}

/** Description= of [Unit] and the .wants/.requires directories [Install] names. */
export function parseUnitFile(text: string): { description?: string; installDirs: string[] } {
  let section = '';
  let description: string | undefined;
  const installDirs: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header?.[1] !== undefined) {
      section = header[1];
      continue;
    }
    const kv = /^([A-Za-z]+)\s*=\s*(.*)$/.exec(line);
    if (kv?.[1] === undefined || kv[2] === undefined) continue;
    if (section === 'Unit' && kv[1] === 'Description') description = kv[2];
    if (section === 'Install' && (kv[1] === 'WantedBy' || kv[1] === 'RequiredBy')) {
      const suffix = kv[1] === 'WantedBy' ? '.wants' : '.requires';
      for (const target of kv[2].split(/\s+/)) if (isUnitName(target)) installDirs.push(target + suffix);
    }
  }
  return { ...(description !== undefined ? { description } : {}), installDirs };
}

/** Units with a symlink in some `*.wants/` or `*.requires/` directory of dir. */
function enabledUnits(dir: string): Set<string> {
  const out = new Set<string>();
  for (const entry of safeList(dir)) {
    if (!entry.endsWith('.wants') && !entry.endsWith('.requires')) continue;
    for (const link of safeList(join(dir, entry))) out.add(link);
  }
  return out;
}

function safeList(dir: string): string[] {
  try {
    return statSync(dir).isDirectory() ? readdirSync(dir) : [];
  } catch {
    return [];
  }
}

function symlinkTarget(path: string): string | undefined {
  try {
    return lstatSync(path).isSymbolicLink() ? readlinkSync(path) : undefined;
  } catch {
    return undefined;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
