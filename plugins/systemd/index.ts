import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';
import { z } from 'zod';
import {
  definePlugin,
  OpError,
  pointer,
  type Availability,
  type Change,
  type PluginContext,
  type ResourceDiff,
  type SectionDiff,
  type StatePlugin,
  type VerifyResult,
} from '../../main/sdk/index.js';
import { MANAGER, ROOT, runJobs, SYSTEMD, type Job } from './jobs.js';

const UNIT_IFACE = 'org.freedesktop.systemd1.Unit';
const UNIT_NAME =
  /^[A-Za-z0-9:_.\\@-]+\.(service|socket|target|timer|path|mount|automount|swap|slice|scope|device)$/;
const DROPIN_NAME = /^[A-Za-z0-9_@.-]+\.conf$/;
const MAX_FILE = 1 << 20;

const UnitSpec = z
  .object({
    active_state: z
      .enum(['active', 'inactive'])
      .optional()
      .describe('active: a start job must end "done"; inactive: a stop job'),
    enabled: z.boolean().optional().describe('Enabled through its [Install] section (EnableUnitFiles)'),
    masked: z.boolean().optional().describe('Linked to /dev/null: it cannot be started'),
    file: z
      .string()
      .max(MAX_FILE)
      .optional()
      .describe('The unit file itself, by content, in the unit directory'),
    dropins: z
      .record(
        z
          .string()
          .regex(DROPIN_NAME)
          .meta({ 'x-error': 'a drop-in file name ending in .conf, e.g. "10-limits.conf"' }),
        z.string().max(MAX_FILE),
      )
      .optional()
      .describe('Drop-ins by content: <unit>.d/<name> in the unit directory'),
  })
  .strict();

/** The `systemd` section: units by name (the original project's format, plus masks, files and drop-ins). */
export const SystemdSection = z
  .object({
    units: z
      .record(
        z
          .string()
          .max(255)
          .regex(UNIT_NAME)
          .meta({ 'x-error': 'a unit name with its type, e.g. "nginx.service"' }),
        UnitSpec,
      )
      .optional(),
  })
  .strict();
export type SystemdSection = z.infer<typeof SystemdSection>;
type UnitSpec = z.infer<typeof UnitSpec>;

/** A unit as the host has it: systemd's states plus the files of the unit directory. */
interface CurrentUnit {
  active_state?: string;
  enabled?: boolean;
  masked?: boolean;
  unit_file_state?: string;
  file?: string;
  dropins?: Record<string, string>;
}
interface State {
  units: Record<string, CurrentUnit>;
}

/** What rollback restores, per unit: only the keys the document named; null = the file did not exist. */
interface UnitCheckpoint {
  active_state?: string;
  enabled?: boolean;
  masked?: boolean;
  file?: string | null;
  dropins?: Record<string, string | null>;
}
type Checkpoint = Record<string, UnitCheckpoint>;

const units = (s: SystemdSection | State): Record<string, UnitSpec | CurrentUnit> => s.units ?? {};
const at = (unit: string, ...rest: string[]): string => pointer('plugins', 'systemd', 'units', unit, ...rest);

const systemdPlugin: StatePlugin<State, Checkpoint> = {
  async available(ctx): Promise<Availability> {
    try {
      unitDir(ctx);
      if (await ctx.bus.reachable(SYSTEMD)) return { available: true };
      return { available: false, reason: `${SYSTEMD} is not on the system bus (is systemd PID 1 here?)` };
    } catch (e) {
      return { available: false, reason: e instanceof Error ? e.message : String(e) };
    }
  },

  query: (ctx) => query(ctx),

  async diff(current, desired, ctx): Promise<SectionDiff> {
    const resources: ResourceDiff[] = [];
    const problems: { unit: string; pointer: string; why: string }[] = [];
    for (const [name, want] of Object.entries(units(desired)) as [string, UnitSpec][]) {
      let have = current.units[name];
      if (have === undefined && want.file === undefined) have = await loadedOutsideLists(ctx, name);
      if (have === undefined && want.file === undefined) {
        problems.push({
          unit: name,
          pointer: at(name),
          why: `unit ${name} does not exist on this host (no unit file, not loaded)`,
        });
        continue;
      }
      const why = conflict(name, want, have);
      if (why !== undefined) {
        problems.push({ unit: name, pointer: at(name), why });
        continue;
      }
      const changes = unitChanges(name, want, have ?? {});
      resources.push({
        id: name,
        action: changes.length === 0 ? 'noop' : have === undefined ? 'create' : 'modify',
        changes,
      });
    }
    if (problems.length > 0) {
      throw new OpError(
        'InvalidArgument',
        `plugin systemd: ${problems.map((p) => `${p.why} (${p.pointer})`).join('; ')}`,
        { plugin: 'systemd', pointer: problems[0]?.pointer ?? '' },
        { units: problems },
      );
    }
    return { resources };
  },

  async checkpoint(desired, ctx): Promise<Checkpoint> {
    const current = await query(ctx);
    const cp: Checkpoint = {};
    for (const [name, want] of Object.entries(units(desired)) as [string, UnitSpec][]) {
      const have = current.units[name] ?? {};
      const c: UnitCheckpoint = {};
      if (want.active_state !== undefined) c.active_state = activeOrNot(have.active_state);
      if (want.enabled !== undefined) c.enabled = have.enabled ?? false;
      if (want.masked !== undefined) c.masked = have.masked ?? false;
      if (want.file !== undefined) c.file = have.file ?? null;
      if (want.dropins !== undefined) {
        c.dropins = Object.fromEntries(Object.keys(want.dropins).map((f) => [f, have.dropins?.[f] ?? null]));
      }
      cp[name] = c;
    }
    return cp;
  },

  async apply(diff, desired, ctx): Promise<{ changed: number }> {
    const changing = diff.resources.filter((r) => r.action !== 'noop');
    const plan: Target = { files: [], unmask: [], enable: [], disable: [], mask: [], jobs: [] };
    for (const r of changing) {
      for (const c of r.changes) addChange(plan, r.id, c);
    }
    await converge(ctx, plan);
    return { changed: changing.length };
  },

  async verify(desired, ctx): Promise<VerifyResult> {
    const drift: VerifyResult['drift'] = [];
    const dir = unitDir(ctx);
    for (const [name, want] of Object.entries(units(desired)) as [string, UnitSpec][]) {
      const props = await unitProperties(ctx, name);
      const fileState = typeof props['UnitFileState'] === 'string' ? props['UnitFileState'] : '';
      const state = typeof props['ActiveState'] === 'string' ? props['ActiveState'] : '';
      const active =
        want.active_state === 'active' ? (state === 'active' ? 'active' : 'inactive') : activeOrNot(state);
      if (want.active_state !== undefined && active !== want.active_state)
        drift.push({
          path: at(name, 'active_state'),
          expected: want.active_state,
          actual: props['ActiveState'],
        });
      if (want.enabled !== undefined && isEnabled(fileState) !== want.enabled)
        drift.push({ path: at(name, 'enabled'), expected: want.enabled, actual: fileState });
      if (want.masked !== undefined && (fileState === 'masked') !== want.masked)
        drift.push({ path: at(name, 'masked'), expected: want.masked, actual: fileState });
      const loaded = Array.isArray(props['DropInPaths']) ? (props['DropInPaths'] as unknown[]) : [];
      for (const [f, content] of Object.entries(want.dropins ?? {})) {
        const path = join(dir, `${name}.d`, f);
        const onDisk = readText(path);
        if (onDisk !== content)
          drift.push({ path: at(name, 'dropins', f), expected: content, actual: onDisk ?? null });
        else if (!loaded.includes(path))
          drift.push({
            path: at(name, 'dropins', f),
            expected: `loaded from ${path}`,
            actual: 'not loaded (no Reload?)',
          });
      }
      if (want.file !== undefined) {
        const path = join(dir, name);
        const onDisk = readText(path);
        if (onDisk !== want.file)
          drift.push({ path: at(name, 'file'), expected: want.file, actual: onDisk ?? null });
        else if (props['FragmentPath'] !== path)
          drift.push({
            path: at(name, 'file'),
            expected: `loaded from ${path}`,
            actual: props['FragmentPath'],
          });
      }
    }
    return { drift };
  },

  async rollback(checkpoint, ctx): Promise<void> {
    const current = await query(ctx);
    const plan: Target = {
      files: [],
      unmask: [],
      enable: [],
      disable: [],
      mask: [],
      jobs: [],
      resetFailed: [],
    };
    for (const [name, was] of Object.entries(checkpoint)) {
      const have = current.units[name] ?? {};
      if (was.file !== undefined && (have.file ?? null) !== was.file)
        plan.files.push({ unit: name, content: was.file });
      for (const [f, content] of Object.entries(was.dropins ?? {})) {
        if ((have.dropins?.[f] ?? null) !== content) plan.files.push({ unit: name, dropin: f, content });
      }
      if (was.masked === false && have.masked === true) plan.unmask.push(name);
      if (was.enabled !== undefined && (have.enabled ?? false) !== was.enabled)
        (was.enabled ? plan.enable : plan.disable).push(name);
      if (was.active_state !== undefined) {
        if (have.active_state === 'failed') plan.resetFailed?.push(name);
        if (activeOrNot(have.active_state) !== was.active_state)
          plan.jobs.push({ unit: name, type: was.active_state === 'active' ? 'start' : 'stop' });
      }
      if (was.masked === true && have.masked !== true) plan.mask.push(name);
    }
    await converge(ctx, plan);
  },
};

/** What an apply or a rollback does, grouped in systemd's order: files, Reload, unit files, Reload, jobs, masks. */
interface Target {
  files: { unit: string; dropin?: string; content: string | null }[];
  unmask: string[];
  enable: string[];
  disable: string[];
  mask: string[];
  jobs: Job[];
  resetFailed?: string[];
}

function addChange(plan: Target, unit: string, c: Change): void {
  const rest = c.path
    .split('/')
    .slice(5)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const [key, sub] = rest;
  if (key === 'file' && typeof c.after === 'string') plan.files.push({ unit, content: c.after });
  else if (key === 'dropins' && sub !== undefined && typeof c.after === 'string')
    plan.files.push({ unit, dropin: sub, content: c.after });
  else if (key === 'masked') (c.after === true ? plan.mask : plan.unmask).push(unit);
  else if (key === 'enabled') (c.after === true ? plan.enable : plan.disable).push(unit);
  else if (key === 'active_state') plan.jobs.push({ unit, type: c.after === 'active' ? 'start' : 'stop' });
}

async function converge(ctx: PluginContext, plan: Target): Promise<void> {
  const dir = unitDir(ctx);
  for (const f of plan.files) {
    ctx.signal.throwIfAborted();
    writeUnitFile(dir, f.unit, f.dropin, f.content);
    ctx.progress(
      `${f.unit}: ${f.dropin === undefined ? 'unit file' : `drop-in ${f.dropin}`} ${f.content === null ? 'removed' : 'written'}`,
    );
  }
  if (plan.files.length > 0) await manager(ctx, 'Reload');
  if (plan.unmask.length > 0) await manager(ctx, 'UnmaskUnitFiles', 'asb', [plan.unmask, false]);
  if (plan.enable.length > 0) await manager(ctx, 'EnableUnitFiles', 'asbb', [plan.enable, false, false]);
  if (plan.disable.length > 0) await manager(ctx, 'DisableUnitFiles', 'asb', [plan.disable, false]);
  if (plan.unmask.length + plan.enable.length + plan.disable.length > 0) {
    await manager(ctx, 'Reload');
    ctx.progress(
      `unit files: ${describe({ unmasked: plan.unmask, enabled: plan.enable, disabled: plan.disable })}`,
    );
  }
  for (const unit of plan.resetFailed ?? []) await manager(ctx, 'ResetFailedUnit', 's', [unit]);
  const failures = await runJobs(ctx, plan.jobs, jobTimeoutMs(ctx));
  if (plan.mask.length > 0) {
    await manager(ctx, 'MaskUnitFiles', 'asbb', [plan.mask, false, false]);
    await manager(ctx, 'Reload');
    ctx.progress(`masked ${plan.mask.join(', ')}`);
  }
  if (failures.length > 0) {
    throw new OpError(
      'ApplyFailed',
      `plugin systemd: ${failures.map((f) => `the ${f.type} job of ${f.unit} ended "${f.result}"`).join('; ')}`,
      { plugin: 'systemd', pointer: at(failures[0]?.unit ?? '', 'active_state') },
      { jobs: failures },
    );
  }
}

function describe(groups: Record<string, string[]>): string {
  return Object.entries(groups)
    .filter(([, v]) => v.length > 0)
    .map(([k, v]) => `${k} ${v.join(', ')}`)
    .join('; ');
}

/** The changes that bring one unit from have to want, in document order of its keys. */
function unitChanges(name: string, want: UnitSpec, have: CurrentUnit): Change[] {
  const changes: Change[] = [];
  const change = (path: string, before: Change['before'], after: Change['after']): void => {
    changes.push({ path, ...(before !== undefined ? { before } : {}), after });
  };
  if (want.file !== undefined && have.file !== want.file) change(at(name, 'file'), have.file, want.file);
  for (const [f, content] of Object.entries(want.dropins ?? {})) {
    if (have.dropins?.[f] !== content) change(at(name, 'dropins', f), have.dropins?.[f], content);
  }
  if (want.masked !== undefined && (have.masked ?? false) !== want.masked)
    change(at(name, 'masked'), have.masked ?? false, want.masked);
  if (want.enabled !== undefined && (have.enabled ?? false) !== want.enabled)
    change(at(name, 'enabled'), have.enabled ?? false, want.enabled);
  if (want.active_state !== undefined && activeOrNot(have.active_state) !== want.active_state)
    change(at(name, 'active_state'), have.active_state ?? 'inactive', want.active_state);
  return changes;
}

/** Why a unit cannot be brought to want, or undefined. */
function conflict(name: string, want: UnitSpec, have: CurrentUnit | undefined): string | undefined {
  if (want.masked === true && want.active_state === 'active')
    return `unit ${name} cannot be masked and active`;
  if (want.masked === true && want.enabled === true) return `unit ${name} cannot be masked and enabled`;
  const state = have?.unit_file_state;
  if (
    want.enabled === true &&
    want.file === undefined &&
    state !== undefined &&
    ['static', 'indirect', 'generated', 'transient'].includes(state)
  ) {
    return `unit ${name} cannot be enabled: its unit file state is "${state}" (no [Install] section to enable)`;
  }
  if (have?.masked === true && want.masked === undefined && want.active_state === 'active')
    return `unit ${name} is masked: say "masked": false to start it`;
  return undefined;
}

/** The units systemd lists (loaded ones and unit files) and the files of the unit directory. */
async function query(ctx: PluginContext): Promise<State> {
  const [listed] = await manager(ctx, 'ListUnits');
  const [files] = await manager(ctx, 'ListUnitFiles');
  const out: Record<string, CurrentUnit> = {};
  for (const row of Array.isArray(listed) ? (listed as unknown[]) : []) {
    if (!Array.isArray(row) || typeof row[0] !== 'string' || typeof row[3] !== 'string') continue;
    if (!UNIT_NAME.test(row[0]) || row[2] === 'not-found') continue;
    out[row[0]] = { active_state: row[3] };
  }
  for (const row of Array.isArray(files) ? (files as unknown[]) : []) {
    if (!Array.isArray(row) || typeof row[0] !== 'string' || typeof row[1] !== 'string') continue;
    const name = basename(row[0]);
    if (!UNIT_NAME.test(name)) continue;
    const unit = (out[name] ??= { active_state: 'inactive' });
    unit.unit_file_state = row[1];
    unit.enabled = isEnabled(row[1]);
    unit.masked = row[1] === 'masked';
  }
  readUnitDir(unitDir(ctx), out);
  return { units: out };
}

/** Unit files and drop-ins of the unit directory (those this plugin writes), into units. */
function readUnitDir(dir: string, out: Record<string, CurrentUnit>): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile() && UNIT_NAME.test(entry.name)) {
      const text = readText(join(dir, entry.name));
      if (text !== undefined) (out[entry.name] ??= { active_state: 'inactive' }).file = text;
    } else if (entry.isDirectory() && entry.name.endsWith('.d') && UNIT_NAME.test(entry.name.slice(0, -2))) {
      const dropins: Record<string, string> = {};
      for (const f of readdirSync(join(dir, entry.name))) {
        if (!DROPIN_NAME.test(f)) continue;
        const text = readText(join(dir, entry.name, f));
        if (text !== undefined) dropins[f] = text;
      }
      if (Object.keys(dropins).length > 0)
        (out[entry.name.slice(0, -2)] ??= { active_state: 'inactive' }).dropins = dropins;
    }
  }
}

/** A unit that neither list names (an instance of a template, say): loaded on demand, as systemctl does. */
async function loadedOutsideLists(ctx: PluginContext, name: string): Promise<CurrentUnit | undefined> {
  const props = await unitProperties(ctx, name);
  if (props['LoadState'] !== 'loaded') return undefined;
  const state = typeof props['UnitFileState'] === 'string' ? props['UnitFileState'] : '';
  return {
    active_state: typeof props['ActiveState'] === 'string' ? props['ActiveState'] : 'inactive',
    unit_file_state: state,
    enabled: isEnabled(state),
    masked: state === 'masked',
  };
}

async function unitProperties(ctx: PluginContext, name: string): Promise<Record<string, unknown>> {
  const [path] = await manager(ctx, 'LoadUnit', 's', [name]);
  if (typeof path !== 'string' || !path.startsWith(`${ROOT}/unit/`))
    throw new Error(`LoadUnit(${name}) returned no unit object path`);
  return ctx.bus.getAll(SYSTEMD, path, UNIT_IFACE);
}

function manager(
  ctx: PluginContext,
  member: string,
  signature = '',
  body: unknown[] = [],
): Promise<unknown[]> {
  return ctx.bus.call({
    destination: SYSTEMD,
    path: ROOT,
    interface: MANAGER,
    member,
    signature,
    body,
    timeoutMs: 30_000,
  });
}

/** Writes (or removes, content null) a unit file or drop-in of the unit directory, atomically. */
function writeUnitFile(dir: string, unit: string, dropin: string | undefined, content: string | null): void {
  if (!UNIT_NAME.test(unit) || (dropin !== undefined && !DROPIN_NAME.test(dropin)))
    throw new Error(
      `refusing to write ${unit}${dropin !== undefined ? `/${dropin}` : ''}: not a unit or drop-in name`,
    );
  const parent = dropin === undefined ? dir : join(dir, `${unit}.d`);
  const path = join(parent, dropin ?? unit);
  if (content === null) {
    rmSync(path, { force: true });
    if (dropin !== undefined && existsSync(parent) && readdirSync(parent).length === 0) rmdirSync(parent);
    return;
  }
  if (existsSync(path) && lstatSync(path).isSymbolicLink()) rmSync(path);
  mkdirSync(parent, { recursive: true, mode: 0o755 });
  const tmp = `${path}.op-dbus-tmp`;
  writeFileSync(tmp, content, { mode: 0o644 });
  renameSync(tmp, path);
}

function readText(path: string): string | undefined {
  try {
    if (!lstatSync(path).isFile()) return undefined;
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function unitDir(ctx: PluginContext): string {
  const dir = ctx.config['unit_dir'];
  if (typeof dir !== 'string' || !isAbsolute(dir))
    throw new Error(`[config] unit_dir must be an absolute directory, not ${JSON.stringify(dir)}`);
  return dir;
}

function jobTimeoutMs(ctx: PluginContext): number {
  const s = ctx.config['job_timeout_s'];
  return (typeof s === 'number' && s > 0 && s <= 3600 ? s : 90) * 1000;
}

function isEnabled(unitFileState: string | undefined): boolean {
  return unitFileState === 'enabled' || unitFileState === 'enabled-runtime';
}

/** active or inactive, as the document says it: failed and deactivating are not active; activating and reloading are on their way. */
function activeOrNot(state: string | undefined): 'active' | 'inactive' {
  return state === 'active' || state === 'reloading' || state === 'activating' ? 'active' : 'inactive';
}

export default definePlugin({
  schema: z.toJSONSchema(SystemdSection, { io: 'input' }) as Record<string, unknown>,
  plugin: systemdPlugin,
});
