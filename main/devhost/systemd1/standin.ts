import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import dbus from 'dbus-next';
import { scanUnits, isUnitName, type UnitFile } from './unit-files.js';

// A stand-in for systemd's org.freedesktop.systemd1, NOT systemd: this machine has no systemd as
// PID 1 and must never run one. It serves the members of the real interfaces that the systemd plugin
// uses, with their real signatures (test/plugins/systemd.test.ts checks its Introspect output
// against the introspection XML of systemd 252 in the shared fixtures), and systemd's semantics
// for them: StartUnit/StopUnit queue a job object and return its path, the job ends later with
// JobRemoved(id, path, unit, result); unit files, drop-ins, enablement symlinks and masks are read
// from and written to unit directories as systemd does, and a change is seen only after Reload.
// No process is started for a unit. It can be told to fail a unit's next job
// (org.opdbus.Systemd1StandIn.FailNextJob), which real systemd does when a service's ExecStart fails.

const { Interface, ACCESS_READ } = dbus.interface;
const ROOT = '/org/freedesktop/systemd1';
const NO_SUCH_UNIT = 'org.freedesktop.systemd1.NoSuchUnit';
const UNIT_MASKED = 'org.freedesktop.systemd1.UnitMasked';

export interface StandInOptions {
  /** The D-Bus address of the bus to serve on. */
  address: string;
  /** The writable unit directory: the host's /etc/systemd/system (what the plugin's unit_dir points at). */
  unitDir: string;
  /** Read-only unit directories after it, e.g. this machine's /lib/systemd/system, as a real host has them. */
  searchPath: readonly string[];
  /** How long a job runs before it ends (systemd's jobs end when the unit has started). */
  jobDelayMs?: number;
}

interface UnitRuntime {
  active: string;
  sub: string;
}

/** Escapes a unit name into an object path label as systemd's bus_label_escape does. */
export function unitObjectPath(name: string): string {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i] as string;
    if (/[A-Za-z]/.test(c) || (/[0-9]/.test(c) && i > 0)) out += c;
    else out += '_' + c.charCodeAt(0).toString(16).padStart(2, '0');
  }
  return `${ROOT}/unit/${out}`;
}

/** The stand-in's state: unit files as last (re)loaded, runtime states, jobs, injected failures. */
class StandIn {
  units = new Map<string, UnitFile>();
  readonly runtime = new Map<string, UnitRuntime>();
  readonly exported = new Map<string, UnitObject>();
  readonly failNext = new Map<string, string>();
  nextJob = 1;
  manager!: ManagerObject;

  constructor(
    readonly bus: dbus.MessageBus,
    readonly o: StandInOptions,
  ) {}

  reload(): void {
    this.units = scanUnits(this.o.unitDir, this.o.searchPath);
    for (const name of this.units.keys()) this.exportUnit(name);
  }

  exportUnit(name: string): UnitObject {
    let obj = this.exported.get(name);
    if (obj === undefined) {
      obj = new UnitObject(this, name);
      this.exported.set(name, obj);
      this.bus.export(unitObjectPath(name), obj);
    }
    return obj;
  }

  state(name: string): UnitRuntime {
    return this.runtime.get(name) ?? { active: 'inactive', sub: 'dead' };
  }

  /** The unit's file, or the D-Bus error systemd gives for a name it cannot load. */
  loaded(name: string): UnitFile {
    if (!isUnitName(name))
      throw new dbus.DBusError('org.freedesktop.DBus.Error.InvalidArgs', `Unit name ${name} is not valid.`);
    const unit = this.units.get(name);
    if (unit === undefined) throw new dbus.DBusError(NO_SUCH_UNIT, `Unit ${name} not found.`);
    return unit;
  }

  /** Queues a start or stop job; it ends after jobDelayMs with JobRemoved. */
  enqueue(name: string, type: 'start' | 'stop'): string {
    const unit = this.loaded(name);
    if (unit.unitFileState === 'masked' && type === 'start') {
      throw new dbus.DBusError(UNIT_MASKED, `Unit ${name} is masked.`);
    }
    const id = this.nextJob++;
    const path = `${ROOT}/job/${id}`;
    const job = new JobObject(id, name, type);
    this.bus.export(path, job);
    const obj = this.exportUnit(name);
    if (type === 'start' && this.state(name).active !== 'active') this.setState(obj, 'activating', 'start');
    if (type === 'stop' && this.state(name).active === 'active') this.setState(obj, 'deactivating', 'stop');
    setImmediate(() => this.manager.JobNew(id, path, name));
    setTimeout(() => {
      const injected = this.failNext.get(name);
      this.failNext.delete(name);
      const result = injected ?? 'done';
      if (result !== 'done') this.setState(obj, 'failed', 'failed');
      else if (type === 'start') this.setState(obj, 'active', 'running');
      else if (this.state(name).active !== 'failed') this.setState(obj, 'inactive', 'dead');
      this.bus.unexport(path, job);
      this.manager.JobRemoved(id, path, name, result);
    }, this.o.jobDelayMs ?? 30);
    return path;
  }

  setState(obj: UnitObject, active: string, sub: string): void {
    this.runtime.set(obj.unit, { active, sub });
    Interface.emitPropertiesChanged(obj, { ActiveState: active, SubState: sub }, []);
  }

  /** Creates the symlinks [Install] names in the writable directory, as `systemctl enable`. */
  enable(name: string): [string, string, string][] {
    const unit = this.unitFileFor(name);
    if (unit.unitFileState === 'masked')
      throw new dbus.DBusError(UNIT_MASKED, `Unit file ${name} is masked.`);
    const changes: [string, string, string][] = [];
    for (const dir of unit.installDirs) {
      const link = join(this.o.unitDir, dir, name);
      if (isLink(link)) continue;
      mkdirSync(dirname(link), { recursive: true });
      symlinkSync(unit.fragmentPath, link);
      changes.push(['symlink', link, unit.fragmentPath]);
    }
    return changes;
  }

  /** Removes every enablement symlink of name in the writable directory, as `systemctl disable`. */
  disable(name: string): [string, string, string][] {
    this.unitFileFor(name);
    const changes: [string, string, string][] = [];
    for (const dir of listDir(this.o.unitDir)) {
      if (!dir.endsWith('.wants') && !dir.endsWith('.requires')) continue;
      const link = join(this.o.unitDir, dir, name);
      if (!isLink(link)) continue;
      rmSync(link);
      changes.push(['unlink', link, '']);
    }
    return changes;
  }

  mask(name: string, force: boolean): [string, string, string][] {
    this.unitFileFor(name);
    const link = join(this.o.unitDir, name);
    if (isLink(link) && readlinkSync(link) === '/dev/null') return [];
    if (existsSync(link) || isLink(link)) {
      if (!force)
        throw new dbus.DBusError('org.freedesktop.DBus.Error.FileExists', `File ${link} already exists.`);
      rmSync(link);
    }
    symlinkSync('/dev/null', link);
    return [['symlink', link, '/dev/null']];
  }

  unmask(name: string): [string, string, string][] {
    const link = join(this.o.unitDir, name);
    if (!isLink(link) || readlinkSync(link) !== '/dev/null') return [];
    rmSync(link);
    return [['unlink', link, '']];
  }

  private unitFileFor(name: string): UnitFile {
    const unit = this.units.get(name);
    if (unit === undefined) {
      throw new dbus.DBusError(
        'org.freedesktop.DBus.Error.FileNotFound',
        `Unit file ${name} does not exist.`,
      );
    }
    return unit;
  }
}

class ManagerObject extends Interface {
  constructor(private readonly s: StandIn) {
    super('org.freedesktop.systemd1.Manager');
  }
  get Version(): string {
    return '252 (op-dbus stand-in, not systemd)';
  }
  GetUnit(name: string): string {
    this.s.loaded(name);
    return unitObjectPath(name);
  }
  LoadUnit(name: string): string {
    if (!isUnitName(name))
      throw new dbus.DBusError('org.freedesktop.DBus.Error.InvalidArgs', `Unit name ${name} is not valid.`);
    this.s.exportUnit(name);
    return unitObjectPath(name);
  }
  StartUnit(name: string, mode: string): string {
    checkMode(mode);
    return this.s.enqueue(name, 'start');
  }
  StopUnit(name: string, mode: string): string {
    checkMode(mode);
    return this.s.enqueue(name, 'stop');
  }
  ResetFailedUnit(name: string): void {
    const unit = this.s.loaded(name);
    if (this.s.state(name).active === 'failed')
      this.s.setState(this.s.exportUnit(unit.name), 'inactive', 'dead');
  }
  ListUnits(): [string, string, string, string, string, string, string, number, string, string][] {
    return [...this.s.units.values()].map((u) => {
      const st = this.s.state(u.name);
      return [u.name, u.description, 'loaded', st.active, st.sub, '', unitObjectPath(u.name), 0, '', '/'];
    });
  }
  ListUnitFiles(): [string, string][] {
    return [...this.s.units.values()].map((u) => [
      u.fragmentPath || join(this.s.o.unitDir, u.name),
      u.unitFileState,
    ]);
  }
  EnableUnitFiles(
    files: string[],
    _runtime: boolean,
    _force: boolean,
  ): [boolean, [string, string, string][]] {
    let carries = false;
    const changes: [string, string, string][] = [];
    for (const f of files) {
      if ((this.s.units.get(f)?.installDirs.length ?? 0) > 0) carries = true;
      changes.push(...this.s.enable(f));
    }
    return [carries, changes];
  }
  DisableUnitFiles(files: string[], _runtime: boolean): [string, string, string][] {
    return files.flatMap((f) => this.s.disable(f));
  }
  MaskUnitFiles(files: string[], _runtime: boolean, force: boolean): [string, string, string][] {
    return files.flatMap((f) => this.s.mask(f, force));
  }
  UnmaskUnitFiles(files: string[], _runtime: boolean): [string, string, string][] {
    return files.flatMap((f) => this.s.unmask(f));
  }
  Reload(): void {
    this.Reloading(true);
    this.s.reload();
    this.Reloading(false);
  }
  Subscribe(): void {
    // every signal is broadcast; like systemd's, Subscribe only says the client wants them
  }
  Unsubscribe(): void {
    // see Subscribe
  }
  JobNew(id: number, path: string, unit: string): unknown[] {
    return [id, path, unit];
  }
  JobRemoved(id: number, path: string, unit: string, result: string): unknown[] {
    return [id, path, unit, result];
  }
  Reloading(active: boolean): boolean {
    return active;
  }
}
ManagerObject.configureMembers({
  properties: { Version: { signature: 's', access: ACCESS_READ } },
  methods: {
    GetUnit: { inSignature: 's', outSignature: 'o' },
    LoadUnit: { inSignature: 's', outSignature: 'o' },
    StartUnit: { inSignature: 'ss', outSignature: 'o' },
    StopUnit: { inSignature: 'ss', outSignature: 'o' },
    ResetFailedUnit: { inSignature: 's' },
    ListUnits: { outSignature: 'a(ssssssouso)' },
    ListUnitFiles: { outSignature: 'a(ss)' },
    EnableUnitFiles: { inSignature: 'asbb', outSignature: 'ba(sss)' },
    DisableUnitFiles: { inSignature: 'asb', outSignature: 'a(sss)' },
    MaskUnitFiles: { inSignature: 'asbb', outSignature: 'a(sss)' },
    UnmaskUnitFiles: { inSignature: 'asb', outSignature: 'a(sss)' },
    Reload: {},
    Subscribe: {},
    Unsubscribe: {},
  },
  signals: {
    JobNew: { signature: 'uos' },
    JobRemoved: { signature: 'uoss' },
    Reloading: { signature: 'b' },
  },
});

class UnitObject extends Interface {
  constructor(
    private readonly s: StandIn,
    readonly unit: string,
  ) {
    super('org.freedesktop.systemd1.Unit');
  }
  private get file(): UnitFile | undefined {
    return this.s.units.get(this.unit);
  }
  get Id(): string {
    return this.unit;
  }
  get Names(): string[] {
    return [this.unit];
  }
  get Description(): string {
    return this.file?.description ?? this.unit;
  }
  get LoadState(): string {
    const f = this.file;
    return f === undefined ? 'not-found' : f.unitFileState === 'masked' ? 'masked' : 'loaded';
  }
  get ActiveState(): string {
    return this.s.state(this.unit).active;
  }
  get SubState(): string {
    return this.s.state(this.unit).sub;
  }
  get UnitFileState(): string {
    // systemd reads this from disk on each call, so it changes before a Reload
    const now = scanUnits(this.s.o.unitDir, this.s.o.searchPath).get(this.unit);
    return now?.unitFileState ?? '';
  }
  get FragmentPath(): string {
    return this.file?.fragmentPath ?? '';
  }
  get DropInPaths(): string[] {
    return this.file?.dropInPaths ?? [];
  }
  get NeedDaemonReload(): boolean {
    const now = scanUnits(this.s.o.unitDir, this.s.o.searchPath).get(this.unit);
    const was = this.file;
    return (
      now?.fragmentPath !== was?.fragmentPath ||
      (now?.dropInPaths ?? []).join('\n') !== (was?.dropInPaths ?? []).join('\n')
    );
  }
}
UnitObject.configureMembers({
  properties: Object.fromEntries(
    [
      ['Id', 's'],
      ['Names', 'as'],
      ['Description', 's'],
      ['LoadState', 's'],
      ['ActiveState', 's'],
      ['SubState', 's'],
      ['UnitFileState', 's'],
      ['FragmentPath', 's'],
      ['DropInPaths', 'as'],
      ['NeedDaemonReload', 'b'],
    ].map(([name, signature]) => [name as string, { signature: signature as string, access: ACCESS_READ }]),
  ),
});

class JobObject extends Interface {
  constructor(
    private readonly id: number,
    private readonly unit: string,
    private readonly type: string,
  ) {
    super('org.freedesktop.systemd1.Job');
  }
  get Id(): number {
    return this.id;
  }
  get Unit(): [string, string] {
    return [this.unit, unitObjectPath(this.unit)];
  }
  get JobType(): string {
    return this.type;
  }
  get State(): string {
    return 'running';
  }
  Cancel(): void {
    throw new dbus.DBusError('org.freedesktop.DBus.Error.NotSupported', 'the stand-in does not cancel jobs');
  }
}
JobObject.configureMembers({
  properties: {
    Id: { signature: 'u', access: ACCESS_READ },
    Unit: { signature: '(so)', access: ACCESS_READ },
    JobType: { signature: 's', access: ACCESS_READ },
    State: { signature: 's', access: ACCESS_READ },
  },
  methods: { Cancel: {} },
});

/** What only the stand-in has: its control for tests (real systemd fails a job when the service fails). */
class ControlObject extends Interface {
  constructor(private readonly s: StandIn) {
    super('org.opdbus.Systemd1StandIn');
  }
  FailNextJob(unit: string, result: string): void {
    if (!['failed', 'timeout', 'dependency', 'canceled', 'skipped'].includes(result)) {
      throw new dbus.DBusError('org.freedesktop.DBus.Error.InvalidArgs', `not a job result: ${result}`);
    }
    this.s.failNext.set(unit, result);
  }
}
ControlObject.configureMembers({ methods: { FailNextJob: { inSignature: 'ss' } } });

function checkMode(mode: string): void {
  if (!['replace', 'fail', 'isolate', 'ignore-dependencies', 'ignore-requirements'].includes(mode)) {
    throw new dbus.DBusError('org.freedesktop.DBus.Error.InvalidArgs', `Job mode ${mode} invalid.`);
  }
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Serves the stand-in on the bus at o.address as org.freedesktop.systemd1 until stop. */
export async function serveStandIn(o: StandInOptions): Promise<{ stop(): void }> {
  mkdirSync(o.unitDir, { recursive: true });
  const bus = dbus.sessionBus({ busAddress: o.address });
  const s = new StandIn(bus, o);
  s.manager = new ManagerObject(s);
  bus.export(ROOT, s.manager);
  bus.export(ROOT, new ControlObject(s));
  s.reload();
  const reply = await bus.requestName('org.freedesktop.systemd1', dbus.NameFlag.DO_NOT_QUEUE);
  if (reply !== dbus.RequestNameReply.PRIMARY_OWNER) {
    bus.disconnect();
    throw new Error(`could not own org.freedesktop.systemd1 (reply ${reply})`);
  }
  return { stop: () => bus.disconnect() };
}
