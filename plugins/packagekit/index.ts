import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import {
  definePlugin,
  OpError,
  pointer,
  type Availability,
  type PluginContext,
  type ResourceDiff,
  type SectionDiff,
  type StatePlugin,
  type VerifyResult,
} from '../../main/sdk/index.js';
import {
  ERROR_PACKAGE_NOT_FOUND,
  FILTER_INSTALLED,
  FILTER_NONE,
  INFO_INSTALLED,
  ONLY_TRUSTED,
  PACKAGEKIT,
  parsePackageId,
  transaction,
  type TransactionResult,
} from './transaction.js';

const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]{0,127}$/;
const VERSION = /^[A-Za-z0-9.+~:-]{1,128}$/;

const PackageSpec = z
  .object({
    ensure: z.enum(['installed', 'removed']),
    version: z
      .string()
      .regex(VERSION)
      .meta({ 'x-error': 'a Debian version, e.g. "1.0.0-1"' })
      .optional()
      .describe('Exactly this version (installed only)'),
  })
  .strict();

/** The `packagekit` section: packages by name (the original project's format). */
export const PackagekitSection = z
  .object({
    packages: z
      .record(
        z.string().regex(PACKAGE_NAME).meta({ 'x-error': 'a Debian package name, e.g. "nginx"' }),
        PackageSpec,
      )
      .optional(),
  })
  .strict();
export type PackagekitSection = z.infer<typeof PackagekitSection>;
type PackageSpec = z.infer<typeof PackageSpec>;

/** Installed packages, name → version; `source` says where they were read (PackageKit, or dpkg read-only). */
interface State {
  packages: Record<string, { ensure: 'installed'; version: string }>;
}
type Checkpoint = Record<string, { installed: boolean; version?: string }>;

const at = (name: string): string => pointer('plugins', 'packagekit', 'packages', name);
const wanted = (s: PackagekitSection): [string, PackageSpec][] => Object.entries(s.packages ?? {});

const packagekitPlugin: StatePlugin<State, Checkpoint> = {
  async available(ctx): Promise<Availability> {
    if ((await pkAbsence(ctx)) === undefined) return { available: true };
    try {
      readDpkgStatus(ctx);
      return { available: true };
    } catch (e) {
      return {
        available: false,
        reason: `${PACKAGEKIT} is not on the system bus, and dpkg's database cannot be read: ${e instanceof Error ? e.message : String(e)}`,
      };
    }
  },

  query: (ctx) => query(ctx),

  async diff(current, desired, ctx): Promise<SectionDiff> {
    const resources: ResourceDiff[] = [];
    const toInstall: string[] = [];
    for (const [name, want] of wanted(desired)) {
      const have = current.packages[name];
      if (want.ensure === 'removed') {
        resources.push(
          have === undefined
            ? { id: name, action: 'noop', changes: [] }
            : { id: name, action: 'delete', changes: [{ path: at(name), before: have }], irreversible: true },
        );
        continue;
      }
      if (have !== undefined && (want.version === undefined || want.version === have.version)) {
        resources.push({ id: name, action: 'noop', changes: [] });
        continue;
      }
      toInstall.push(name);
      resources.push({
        id: name,
        action: have === undefined ? 'create' : 'modify',
        changes: [{ path: at(name), ...(have !== undefined ? { before: have } : {}), after: want }],
      });
    }
    if (!resources.some((r) => r.action !== 'noop')) return { resources };
    const absent = await pkAbsence(ctx);
    if (absent !== undefined) {
      const changing = resources.filter((r) => r.action !== 'noop').map((r) => r.id);
      throw new OpError(
        'PluginUnavailable',
        `plugin packagekit: apply is unavailable: ${absent}, so packages are only read (from dpkg's database in ${admindir(ctx)}); cannot change ${changing.join(', ')}`,
        { plugin: 'packagekit', pointer: at(changing[0] ?? '') },
      );
    }
    if (toInstall.length > 0) {
      const found = await resolve(ctx, toInstall, FILTER_NONE);
      const missing = toInstall.filter((name) => {
        const version = desired.packages?.[name]?.version;
        return !found.some((p) => p.name === name && (version === undefined || p.version === version));
      });
      if (missing.length > 0) {
        throw new OpError(
          'InvalidArgument',
          `plugin packagekit: ${missing
            .map((n) => {
              const v = desired.packages?.[n]?.version;
              return `package ${n}${v !== undefined ? ` version ${v}` : ''} is not available from this host's package sources (${at(n)})`;
            })
            .join('; ')}`,
          { plugin: 'packagekit', pointer: at(missing[0] ?? '') },
          { missing },
        );
      }
    }
    return { resources };
  },

  async checkpoint(desired, ctx): Promise<Checkpoint> {
    const current = await query(ctx);
    const cp: Checkpoint = {};
    for (const [name] of wanted(desired)) {
      const have = current.packages[name];
      cp[name] = have === undefined ? { installed: false } : { installed: true, version: have.version };
    }
    return cp;
  },

  async apply(diff, desired, ctx): Promise<{ changed: number }> {
    const install = diff.resources
      .filter((r) => r.action === 'create' || r.action === 'modify')
      .map((r) => r.id);
    const remove = diff.resources.filter((r) => r.action === 'delete').map((r) => r.id);
    if (install.length > 0) {
      const found = await resolve(ctx, install, FILTER_NONE);
      const ids = install.map((name) => {
        const version = desired.packages?.[name]?.version;
        const pick =
          found.find(
            (p) =>
              p.name === name &&
              p.data !== 'installed' &&
              !p.data.includes(':') &&
              (version === undefined || p.version === version),
          ) ?? found.find((p) => p.name === name && (version === undefined || p.version === version));
        if (pick === undefined) throw new Error(`package ${name} is no longer available (${at(name)})`);
        return pick.id;
      });
      ctx.progress(`installing ${ids.join(', ')}`);
      await run(ctx, 'InstallPackages', 'tas', [ONLY_TRUSTED, ids]);
    }
    if (remove.length > 0) {
      const found = await resolve(ctx, remove, FILTER_INSTALLED);
      const ids = found.filter((p) => remove.includes(p.name)).map((p) => p.id);
      ctx.progress(`removing ${ids.join(', ')} (irreversible)`);
      // no allow_deps: a package others depend on is refused, not removed with them
      await run(ctx, 'RemovePackages', 'tasbb', [0, ids, false, false]);
    }
    return { changed: install.length + remove.length };
  },

  async verify(desired, ctx): Promise<VerifyResult> {
    const current = await query(ctx);
    const drift: VerifyResult['drift'] = [];
    for (const [name, want] of wanted(desired)) {
      const have = current.packages[name];
      if (want.ensure === 'removed' && have !== undefined)
        drift.push({ path: at(name), expected: want, actual: have });
      else if (
        want.ensure === 'installed' &&
        (have === undefined || (want.version !== undefined && have.version !== want.version))
      )
        drift.push({ path: at(name), expected: want, actual: have ?? { ensure: 'removed' } });
    }
    return { drift };
  },

  async rollback(checkpoint, ctx): Promise<void> {
    const current = await query(ctx);
    // the undo of an install is the removal of what it installed; a removal cannot be undone (irreversible)
    const installedByApply = Object.entries(checkpoint)
      .filter(([name, was]) => !was.installed && current.packages[name] !== undefined)
      .map(([name]) => name);
    if (installedByApply.length === 0) return;
    const found = await resolve(ctx, installedByApply, FILTER_INSTALLED);
    await run(ctx, 'RemovePackages', 'tasbb', [0, found.map((p) => p.id), false, false]);
  },
};

/** Installed packages: PackageKit's GetPackages, or dpkg's database (read-only) where PackageKit is absent. */
async function query(ctx: PluginContext): Promise<State> {
  if ((await pkAbsence(ctx)) !== undefined) return { packages: readDpkgStatus(ctx) };
  const r = await transaction(ctx, 'GetPackages', 't', [FILTER_INSTALLED]);
  if (!r.succeeded) throw new Error(`GetPackages failed: ${errorText(r)}`);
  const packages: State['packages'] = {};
  for (const p of r.packages) {
    const id = parsePackageId(p.id);
    if (id !== undefined && PACKAGE_NAME.test(id.name))
      packages[id.name] = { ensure: 'installed', version: id.version };
  }
  return { packages };
}

interface ResolvedPackage {
  id: string;
  name: string;
  version: string;
  data: string;
  installed: boolean;
}

async function resolve(ctx: PluginContext, names: string[], filter: number): Promise<ResolvedPackage[]> {
  const r = await transaction(ctx, 'Resolve', 'tas', [filter, names]);
  if (!r.succeeded && !r.errors.every((e) => e.code === ERROR_PACKAGE_NOT_FOUND))
    throw new Error(`Resolve ${names.join(', ')} failed: ${errorText(r)}`);
  const out: ResolvedPackage[] = [];
  for (const p of r.packages) {
    const id = parsePackageId(p.id);
    if (id !== undefined)
      out.push({
        id: p.id,
        name: id.name,
        version: id.version,
        data: id.data,
        installed: p.info === INFO_INSTALLED,
      });
  }
  return out;
}

async function run(ctx: PluginContext, member: string, signature: string, body: unknown[]): Promise<void> {
  const said = new Set<string>();
  const once = (line: string): void => {
    if (!said.has(line)) ctx.progress(line);
    said.add(line);
  };
  const r = await transaction(ctx, member, signature, body, once);
  if (!r.succeeded) throw new Error(`${member} failed: ${errorText(r)}`);
  for (const p of r.packages) {
    const id = parsePackageId(p.id);
    if (id !== undefined) once(`${id.name} ${id.version}: done`);
  }
}

function errorText(r: TransactionResult): string {
  return r.errors.length === 0
    ? `exit ${r.exit}, no error given`
    : r.errors.map((e) => `PackageKit error ${e.code}: ${e.details}`).join('; ');
}

/** Why PackageKit cannot be used here (not on the bus, or it does not start), or undefined when it answers. */
async function pkAbsence(ctx: PluginContext): Promise<string | undefined> {
  try {
    if (!(await ctx.bus.reachable(PACKAGEKIT))) return `${PACKAGEKIT} is not on the system bus`;
    // activatable is not enough: the call starts it, or says why it did not start
    await ctx.bus.getAll(PACKAGEKIT, '/org/freedesktop/PackageKit', PACKAGEKIT);
    return undefined;
  } catch (e) {
    return `${PACKAGEKIT} does not answer (${e instanceof Error ? e.message : String(e)})`;
  }
}

function admindir(ctx: PluginContext): string {
  const dir = ctx.config['dpkg_admindir'];
  if (typeof dir !== 'string' || !isAbsolute(dir))
    throw new Error(`[config] dpkg_admindir must be an absolute directory, not ${JSON.stringify(dir)}`);
  return dir;
}

/** The read-only fallback: installed packages from dpkg's status file (stanzas of `Field: value`). */
function readDpkgStatus(ctx: PluginContext): State['packages'] {
  const text = readFileSync(join(admindir(ctx), 'status'), 'utf8');
  const out: State['packages'] = {};
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string): string | undefined =>
      new RegExp(`^${name}: *(.*)$`, 'm').exec(stanza)?.[1]?.trim();
    const name = field('Package');
    const version = field('Version');
    const status = field('Status');
    if (name === undefined || version === undefined || !PACKAGE_NAME.test(name)) continue;
    if (status?.split(' ')[2] === 'installed') out[name] = { ensure: 'installed', version };
  }
  return out;
}

export default definePlugin({
  schema: z.toJSONSchema(PackagekitSection, { io: 'input' }) as Record<string, unknown>,
  plugin: packagekitPlugin,
});
