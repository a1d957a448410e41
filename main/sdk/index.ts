/**
 * The plugin SDK: the one module a plugin imports (DESIGN.md section 3, docs/plugins.md). Types of
 * the contract between the engine and a plugin, and a few pure helpers. Every argument and result
 * is plain JSON, so the same plugin can run in the core or behind a process boundary.
 */
import type { Change, ResourceDiff } from '../common/contract/index.js';

export type { Change, ResourceAction, ResourceDiff } from '../common/contract/index.js';
/** An error as a value (a code, a message, where): thrown by a plugin, it keeps its code and pointer. */
export { OpError } from '../common/contract/index.js';

/** A JSON Schema (draft 2020-12) as data. Values marked `"x-secret": true` are redacted everywhere. */
export type JsonSchema = Record<string, unknown>;

/** Whether a plugin can work on this host, and why not when it cannot. */
export type Availability = { available: true } | { available: false; reason: string };

/** What must change in one section: one entry per resource the desired state names. */
export interface SectionDiff {
  resources: ResourceDiff[];
}

export interface ApplyResult {
  /** How many resources the apply changed. */
  changed: number;
}

export interface VerifyResult {
  /** Each named value that differs from the desired one (document JSON pointers). */
  drift: { path: string; expected: unknown; actual: unknown }[];
}

/** A D-Bus method call, addressed in full; the core refuses any call outside the manifest's `[permissions]`. */
export interface BusCall {
  destination: string;
  path: string;
  interface: string;
  member: string;
  signature?: string;
  body?: unknown[];
  timeoutMs?: number;
}

/**
 * The system bus as a plugin sees it: only the names, interfaces and members its manifest declares.
 * A call outside them is refused with an error naming the plugin, the bus name and the member, and
 * the refusal is audited. A plugin never holds the core's own connection.
 */
export interface PluginBus {
  call(call: BusCall): Promise<unknown[]>;
  /** org.freedesktop.DBus.Properties.GetAll, variants unwrapped (needs `properties = "read"`). */
  getAll(destination: string, path: string, iface: string): Promise<Record<string, unknown>>;
  /** Whether a bus name the manifest declares is owned now or activatable. */
  reachable(name: string): Promise<boolean>;
  /**
   * Receives the signals that match, from the current owner of a bus name the manifest declares
   * (with the member in that entry's `signals`); resolves once the bus routes them here. Call the
   * result to stop. Subscribe before the call whose outcome the signal reports (a job, a transaction).
   */
  listen(match: SignalMatch, handler: (signal: BusSignal) => void): Promise<() => Promise<void>>;
  /**
   * A bus connection of the plugin's own, under the same permissions: for a service that binds
   * state to the connection that made it (a PackageKit transaction accepts only its creator). Close it.
   */
  open(): Promise<PluginConnection>;
}

/** A plugin's own bus connection (PluginBus.open). */
export interface PluginConnection extends PluginBus {
  close(): void;
}

/** Which signals to receive: sender is a bus name of the manifest's `[permissions]`. */
export interface SignalMatch {
  sender: string;
  interface: string;
  member: string;
  /** Only signals from this object path; all paths when absent. */
  path?: string;
}

/** A received signal; variants in its body are `{ signature, value }` objects. */
export interface BusSignal {
  path: string;
  interface: string;
  member: string;
  signature: string;
  body: unknown[];
}

export interface PluginLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** What the state of a plugin named in `[dependencies] plugins` looks like to its dependant (read-only). */
export interface DependencyState {
  desired?: unknown;
  current?: unknown;
}

/** Everything a plugin may use, and nothing else. */
export interface PluginContext {
  readonly plugin: string;
  /** The manifest's `[config]` table. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly bus: PluginBus;
  /** Aborted when the admin cancels or the plugin's deadline passes: stop between steps. */
  readonly signal: AbortSignal;
  /** When this call is abandoned (milliseconds since the epoch), from the manifest's `[limits] deadline_s`. */
  readonly deadline: number;
  /** The plugins this one declared in `after`, as far as the current plan knows them (frozen copies). */
  readonly after: Readonly<Record<string, DependencyState>>;
  readonly log: PluginLogger;
  /** A line for the admin watching the apply. */
  progress(message: string): void;
}

/**
 * A plugin manages one section of the desired-state document. `State` is the section's shape;
 * `Checkpoint` must be plain JSON, because the apply journal stores it (fsynced) before any change.
 */
export interface StatePlugin<State = unknown, Checkpoint = unknown> {
  available(ctx: PluginContext): Promise<Availability>;
  /** The current state, normalised into the same shape as the section. */
  query(ctx: PluginContext): Promise<State>;
  /** What must change to go from current to desired: only what desired names is managed. */
  diff(current: State, desired: State, ctx: PluginContext): Promise<SectionDiff>;
  /** Enough of the current state to undo what desired would change. */
  checkpoint(desired: State, ctx: PluginContext): Promise<Checkpoint>;
  /** Applies the resources of diff (the engine may call it twice: reversible ones first, irreversible ones last). */
  apply(diff: SectionDiff, desired: State, ctx: PluginContext): Promise<ApplyResult>;
  /** Re-queries and compares only what desired names. */
  verify(desired: State, ctx: PluginContext): Promise<VerifyResult>;
  rollback(checkpoint: Checkpoint, ctx: PluginContext): Promise<void>;
}

/** What a plugin's entry module exports as default: the plugin, and its section schema unless plugin.toml names a file. */
export interface PluginModule<State = unknown, Checkpoint = unknown> {
  schema?: JsonSchema;
  plugin: StatePlugin<State, Checkpoint>;
}

/** Types a plugin module (an identity function: the engine reads the same object). */
export function definePlugin<State, Checkpoint>(
  module: PluginModule<State, Checkpoint>,
): PluginModule<State, Checkpoint> {
  return module;
}

/** A JSON pointer from unescaped segments: `pointer('plugins', 'files', 'a/b')` → `/plugins/files/a~1b`. */
export function pointer(...segments: string[]): string {
  return segments.map((s) => '/' + s.replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

/**
 * The diff of a section whose resources are named values (one resource per key): each key desired
 * names becomes `noop` when current holds the same JSON value, else `create` (absent) or `modify`.
 */
export function diffKeyed(
  plugin: string,
  current: Readonly<Record<string, unknown>>,
  desired: Readonly<Record<string, unknown>>,
  options: { prefix?: string[] } = {},
): SectionDiff {
  const resources: ResourceDiff[] = [];
  for (const [id, want] of Object.entries(desired)) {
    if (want === undefined) continue;
    const have = current[id];
    const same = have !== undefined && sameJson(have, want);
    const change: Change = {
      path: pointer('plugins', plugin, ...(options.prefix ?? []), id),
      before: have,
      after: want,
    };
    resources.push({
      id,
      action: same ? 'noop' : have === undefined ? 'create' : 'modify',
      changes: same ? [] : [change],
    });
  }
  return { resources };
}

/** Whether two JSON values are equal (object key order does not matter). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every(
      (k) =>
        Object.hasOwn(b, k) && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  );
}

/** One problem a plugin found in the desired state: a message for a person and the JSON pointer it is at. */
export interface InputProblem {
  pointer: string;
  message: string;
}

/**
 * Thrown by a plugin (in diff) for desired state its schema could not refuse (an unknown template,
 * a duplicate id): the engine reports it as a SchemaError at the first problem's pointer, with the
 * document's file, line and column, and every problem located in the error's details.
 */
export class InputError extends Error {
  readonly pointer: string;
  readonly problems: InputProblem[];

  constructor(problems: InputProblem[]) {
    super(problems.map((p) => `${p.message} (at ${p.pointer})`).join('; '));
    this.name = 'InputError';
    this.problems = problems;
    this.pointer = problems[0]?.pointer ?? '';
  }
}
