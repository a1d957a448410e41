import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import {
  OpError,
  type ApplyProgress,
  type ApplyResponse,
  type ApproveResponse,
  type AuditActor,
  type CancelResponse,
  type ConvergeResponse,
  type DriftResponse,
  type Plan,
  type PluginDiff,
  type PluginInfo,
  type PluginsResponse,
  type QueryResponse,
  type ResourceDiff,
  type VerifyResponse,
} from '../../common/contract/index.js';
import type { AppendInput } from '../audit/entry.js';
import { canonicalJson, contentHash, sha256Hex } from '../../common/canonical/jcs.js';
import type { MessageBus } from '../../common/dbus/calls.js';
import type { DependencyState, SectionDiff } from '../../sdk/index.js';
import { parseDesiredDocument, type ParsedDocument } from './document.js';
import { HaltSwitch, type HaltSpec } from './halt-points.js';
import type { ApplyJournal } from './journal.js';
import { LastAppliedStore } from './last-applied.js';
import { PluginCalls, pluginError, type CallOptions } from './plugin-calls.js';
import { redactAt, redactSecrets } from './redact.js';
import { describeChanges } from './change-summary.js';
import type { PluginRegistry, RegisteredPlugin } from './registry.js';

/** Where the engine writes its history: resolves once the entry is committed (group commit batches them). */
export interface AuditSink {
  record(input: AppendInput): Promise<{ seq: number }>;
}

/** Snapshots of the plugins' on-disk state (never the audit log): taken before an apply, restored on rollback. */
export interface PluginStateStore {
  take(label: string): { id: string };
  restore(id: string): void;
  prune(keep: number): unknown;
}

export interface EngineOptions {
  registry: PluginRegistry;
  /** The system bus the plugins' permission-checked facades call through. */
  bus: () => MessageBus;
  snapshots?: PluginStateStore;
  audit: AuditSink;
  journal: ApplyJournal;
  dataDir: string;
  onProgress?: (p: ApplyProgress) => void;
  /** Test-only: stop forever at this boundary (after writing `halted-at` in the data dir) so a test can kill -9. */
  haltAt?: HaltSpec | undefined;
  verifyAttempts?: number;
  log?: (line: string) => void;
}

interface StoredPlan {
  plan: Plan;
  sections: Map<string, unknown>;
  current: Map<string, unknown>;
  /** The plugins' own diffs (the plan's are redacted for display). */
  diffs: Map<string, SectionDiff>;
  currentHash: string;
  approved: boolean;
  /** Who made it: a caller's unapproved plans are evicted only by that caller's newer plans. */
  owner: string;
  /** The plugins it was made with: its apply runs the same versions, whatever was installed since. */
  registry: PluginRegistry;
  /** For a converge: the applied document it re-establishes, which stays the one drift is measured against. */
  convergeOf?: { planHash: string; appliedAt: string };
}

interface Applying {
  planId: string;
  cancel: AbortController;
}

const CORE_ACTOR: AuditActor = { uid: null, subject: 'core' };
/** Pre-apply snapshots kept after a successful apply. */
const KEEP_SNAPSHOTS = 10;
/** Unapproved plans each caller may hold; approved ones are bounded separately. */
const MAX_PLANS_PER_CALLER = 16;
const MAX_APPROVED_PLANS = 64;

/** Plan → approve → apply → verify → rollback, with the journal and the audit log (DESIGN.md section 4). */
export class StateEngine {
  private readonly plans = new Map<string, StoredPlan>();
  private applying: Applying | undefined;
  private readonly o: EngineOptions;
  private readonly calls: PluginCalls;
  private readonly halt: HaltSwitch;
  private readonly lastApplied: LastAppliedStore;
  /** The plugins new work uses; replaced by useRegistry when bundles are installed, switched or removed. */
  private current: PluginRegistry;
  /** Inside a plan or an apply: the registry it started with (so work in progress keeps its plugin versions). */
  private readonly pinned = new AsyncLocalStorage<PluginRegistry>();

  constructor(options: EngineOptions) {
    this.o = options;
    this.current = options.registry;
    this.halt = new HaltSwitch(options.haltAt, options.dataDir);
    this.lastApplied = new LastAppliedStore(options.dataDir);
    this.calls = new PluginCalls({
      bus: options.bus,
      log: options.log ?? (() => undefined),
      onRefused: (r, actor) =>
        options.audit.record({
          kind: 'plugin',
          actor,
          plugin: r.plugin,
          summary: `refused a bus call of plugin ${r.plugin}: ${r.interface}.${r.member} on ${r.destination} (${r.reason})`,
          payload: r,
        }),
      onIsolated: (e, actor) =>
        options.audit.record({
          kind: 'plugin',
          actor,
          plugin: e.plugin,
          summary: e.summary,
          payload: e.payload,
        }),
    });
  }

  /** The registry in effect here: that of the plan or apply in progress, else the current one. */
  get registry(): PluginRegistry {
    return this.pinned.getStore() ?? this.current;
  }

  /** Takes a newly discovered set of plugins for every plan made from now on; plans made before keep theirs. */
  useRegistry(registry: PluginRegistry): void {
    this.current = registry;
  }

  /** Every plugin the core found, in apply order, with whether it can work here; then those it could not load. */
  async plugins(actor: AuditActor): Promise<PluginsResponse> {
    const registry = this.registry;
    const out: PluginInfo[] = [];
    for (const name of registry.names) {
      const p = this.registered(name);
      const availability = await this.availability(p, actor);
      out.push({
        ...describePlugin(p, p.after),
        available: availability.available,
        ...(availability.available ? {} : { why_not: availability.reason }),
        notes: p.missingAfter.map((m) => `after names ${m}, which is not installed: ignored until it is`),
      });
    }
    for (const b of registry.blocked) {
      out.push({
        ...describePlugin(b.record, b.record.manifest.dependencies.plugins),
        available: false,
        why_not: b.reason,
        notes: [],
      });
    }
    // found and listed, not loaded (a generated plugin whose service a built-in owns)
    for (const r of registry.refused) {
      if (r.listed === undefined || r.name === undefined) continue;
      out.push({
        ...describePlugin({ name: r.name, ...r.listed }, r.listed.manifest.dependencies.plugins),
        loaded: false,
        available: false,
        why_not: r.reason,
        notes: [],
      });
    }
    return { plugins: out, refused: registry.refused.filter((r) => r.listed === undefined) };
  }

  /** The current state of each plugin (or why it is unavailable). */
  async query(pluginNames: string[] | undefined, actor: AuditActor): Promise<QueryResponse> {
    const names = pluginNames ?? this.registry.names;
    const out: QueryResponse['plugins'] = [];
    for (const name of names) {
      const plugin = this.registered(name);
      const availability = await this.availability(plugin, actor);
      if (!availability.available) {
        out.push({ plugin: name, version: plugin.version, available: false, reason: availability.reason });
        continue;
      }
      const state = await this.calls.run(plugin, 'query', (ctx) => plugin.impl.query(ctx), { actor });
      out.push({
        plugin: name,
        version: plugin.version,
        available: true,
        state: redactSecrets(state, plugin.schema),
      });
    }
    await this.o.audit.record({
      kind: 'query',
      actor,
      plugin: names.length === 1 ? (names[0] ?? null) : null,
      summary: `query ${names.join(', ')}`,
      payload: out,
    });
    return { plugins: out };
  }

  /** Validates a document, queries the plugins it names and computes the plan. */
  async plan(document: string, file: string | undefined, actor: AuditActor): Promise<Plan> {
    const registry = this.registry;
    return this.pinned.run(registry, async () => {
      const parsed = parseDesiredDocument(document, file);
      const sections = registry.validate(parsed);
      try {
        return (await this.planSections(sections, file, actor)).plan;
      } catch (e) {
        throw located(e, parsed);
      }
    });
  }

  /** The plugins an apply of this plan changes, for polkit's details (empty when the plan is unknown). */
  pluginsOfPlan(planId: string): string[] {
    return (
      this.plans
        .get(planId)
        ?.plan.diffs.filter(hasChanges)
        .map((d) => d.plugin) ?? []
    );
  }

  /** The plugins a converge would touch: those of the last applied document. */
  pluginsOfLastApplied(): string[] {
    return Object.keys(this.lastApplied.load()?.sections ?? {});
  }

  /** Records the admin's approval of exactly this plan hash. */
  async approve(planId: string, hash: string, actor: AuditActor): Promise<ApproveResponse> {
    const stored = this.storedPlan(planId, hash);
    stored.approved = true;
    this.evictPlans(stored.owner);
    const approvedAt = new Date().toISOString();
    const { seq } = await this.o.audit.record({
      kind: 'approve',
      actor,
      plugin: null,
      summary: `approve plan ${hash}`,
      payload: { planId, hash },
    });
    return { planId, hash, approvedAt, auditSeq: seq };
  }

  /**
   * Applies an approved plan: refuses stale plans, a second concurrent apply, and irreversible changes
   * that the request does not confirm one by one; rolls back on failure or cancellation.
   */
  async apply(
    planId: string,
    hash: string,
    actor: AuditActor,
    confirmIrreversible: readonly string[] = [],
  ): Promise<ApplyResponse> {
    const stored = this.storedPlan(planId, hash);
    if (!stored.approved) throw new OpError('NotApproved', `plan ${hash} has not been approved`);
    return this.applyExclusive(stored, actor, confirmIrreversible);
  }

  /** Aborts the running apply of planId between two steps; it rolls back what it applied. */
  cancel(planId: string, actor: AuditActor): CancelResponse {
    const running = this.applying;
    if (running?.planId !== planId) return { planId, cancelled: false };
    const who = actor.uid === null ? actor.subject : `uid ${actor.uid} (${actor.subject})`;
    running.cancel.abort(new OpError('Cancelled', `cancelled by ${who}`));
    this.o.onProgress?.({ planId, plugin: null, step: 'cancelling', message: `cancel requested by ${who}` });
    return { planId, cancelled: true };
  }

  /** Compares the host with a document, naming every value that differs. */
  async verify(document: string, file: string | undefined, actor: AuditActor): Promise<VerifyResponse> {
    const sections = this.registry.validate(parseDesiredDocument(document, file));
    const drift = await this.driftFrom(sections, actor);
    const { seq } = await this.o.audit.record({
      kind: drift.length === 0 ? 'verify' : 'drift',
      actor,
      plugin: sections.size === 1 ? ([...sections.keys()][0] ?? null) : null,
      summary:
        drift.length === 0
          ? `verify: in sync (${[...sections.keys()].join(', ')})`
          : `drift: ${drift.map((d) => d.path).join(', ')}`,
      payload: drift,
    });
    return { inSync: drift.length === 0, drift, auditSeq: seq };
  }

  /** The host against the last applied document, for every plugin it names. */
  async drift(actor: AuditActor): Promise<DriftResponse> {
    const last = this.lastApplied.load();
    if (last === undefined) {
      const { seq } = await this.o.audit.record({
        kind: 'verify',
        actor,
        plugin: null,
        summary: 'drift: nothing has been applied on this host yet',
      });
      return { planHash: null, appliedAt: null, inSync: true, drift: [], auditSeq: seq };
    }
    const drift = await this.driftFrom(this.inRegistryOrder(last.sections), actor);
    const { seq } = await this.o.audit.record({
      kind: drift.length === 0 ? 'verify' : 'drift',
      actor,
      plugin: null,
      summary:
        drift.length === 0
          ? `drift: in sync with applied plan ${last.planHash}`
          : `drift from applied plan ${last.planHash}: ${drift.map((d) => d.path).join(', ')}`,
      payload: { planHash: last.planHash, drift },
    });
    return {
      planHash: last.planHash,
      appliedAt: last.appliedAt,
      ...(last.file !== undefined ? { file: last.file } : {}),
      inSync: drift.length === 0,
      drift,
      auditSeq: seq,
    };
  }

  /**
   * Re-applies the last applied document where the host drifted from it (state a host does not keep
   * across a reboot comes back). The admin approved that document when it was applied; the new plan
   * is audited as a converge of that plan hash, and its irreversible changes still need confirming.
   */
  async converge(
    actor: AuditActor,
    confirmIrreversible: readonly string[] = [],
    dryRun = false,
  ): Promise<ConvergeResponse> {
    const last = this.lastApplied.load();
    if (last === undefined) {
      throw new OpError(
        'NothingApplied',
        'nothing has been applied on this host yet: there is nothing to converge to',
      );
    }
    const stored = await this.pinned.run(this.registry, () =>
      this.planSections(this.inRegistryOrder(last.sections), last.file, actor),
    );
    const { plan } = stored;
    if (dryRun) {
      this.plans.delete(plan.id);
      return { planHash: last.planHash, plan, apply: null };
    }
    await this.o.audit.record({
      kind: 'converge',
      actor,
      plugin: null,
      summary: plan.hasChanges
        ? `converge to applied plan ${last.planHash}: new plan ${plan.hash} with ${countChanges(plan)} change(s)`
        : `converge to applied plan ${last.planHash}: in sync, nothing to do`,
      payload: { appliedPlanHash: last.planHash, planHash: plan.hash },
    });
    if (!plan.hasChanges) {
      this.plans.delete(plan.id);
      return { planHash: last.planHash, plan, apply: null };
    }
    stored.approved = true;
    stored.convergeOf = { planHash: last.planHash, appliedAt: last.appliedAt };
    const apply = await this.applyExclusive(stored, actor, confirmIrreversible);
    return { planHash: last.planHash, plan, apply };
  }

  /**
   * At start-up: an apply that the journal shows unfinished is rolled back, or recorded as applied
   * when every plugin had already been verified, before the core accepts new work.
   */
  async recover(): Promise<string | undefined> {
    const unfinished = this.o.journal.unfinished();
    if (unfinished === undefined) return undefined;
    const { begin } = unfinished;
    const allVerified = begin.plugins.every((p) => unfinished.verified.has(p));
    if (allVerified) {
      if (begin.document !== undefined) {
        this.lastApplied.save({
          planHash: begin.convergeOf?.planHash ?? begin.hash,
          appliedAt: begin.convergeOf?.appliedAt ?? begin.time,
          sections: begin.document,
        });
      }
      const summary = `recovery: apply of plan ${begin.hash} was fully applied and verified before the core stopped`;
      await this.o.audit.record({
        kind: 'recovery',
        actor: CORE_ACTOR,
        plugin: null,
        summary,
        payload: begin,
      });
      this.o.journal.record({ type: 'end', applyId: begin.applyId, outcome: 'applied' });
      return summary;
    }
    const toUndo = begin.plugins
      .filter((p) => unfinished.checkpoints.has(p) && !unfinished.rolledBack.has(p))
      .reverse();
    const failures: string[] = [];
    for (const name of toUndo) {
      try {
        const plugin = this.registry.get(name);
        if (plugin === undefined) throw new Error(`plugin ${name} is no longer installed`);
        const checkpoint = unfinished.checkpoints.get(name);
        await this.calls.run(plugin, 'rollback', (ctx) => plugin.impl.rollback(checkpoint, ctx), {
          actor: CORE_ACTOR,
        });
        this.o.journal.record({ type: 'rolled-back', applyId: begin.applyId, plugin: name });
        await this.o.audit.record({
          kind: 'rollback',
          actor: CORE_ACTOR,
          plugin: name,
          summary: `rollback ${name}: unfinished apply of plan ${begin.hash} undone at start-up`,
          payload: { checkpoint: redactSecrets(checkpoint, plugin.schema) },
        });
      } catch (e) {
        failures.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    failures.push(...this.restoreSnapshot(begin.snapshot));
    const irreversible =
      unfinished.irreversibleStarted.length > 0
        ? `; irreversible changes had started and cannot be undone: ${unfinished.irreversibleStarted.join(', ')}`
        : '';
    const summary =
      failures.length === 0
        ? `recovery: unfinished apply of plan ${begin.hash} rolled back (${toUndo.join(', ') || 'nothing had changed'}); host is at its earlier state${irreversible}`
        : `recovery: rollback of plan ${begin.hash} FAILED: ${failures.join('; ')}${irreversible}`;
    await this.o.audit.record({
      kind: 'recovery',
      actor: CORE_ACTOR,
      plugin: null,
      summary,
      payload: {
        begin: { ...begin, document: undefined },
        failures,
        irreversibleStarted: unfinished.irreversibleStarted,
      },
    });
    this.o.journal.record({
      type: 'end',
      applyId: begin.applyId,
      outcome: failures.length === 0 ? 'rolled-back' : 'rollback-failed',
    });
    return summary;
  }

  private async planSections(
    sections: Map<string, unknown>,
    file: string | undefined,
    actor: AuditActor,
  ): Promise<StoredPlan> {
    const started = performance.now();
    const current = await this.queryNamed(sections, actor);
    const context = await this.dependencyContext(sections, current, actor);
    const diffs = new Map<string, SectionDiff>();
    const shown: PluginDiff[] = [];
    for (const [name, desired] of sections) {
      const plugin = this.registered(name);
      const d = await this.calls.diff(plugin, current.get(name), desired, { actor, after: context(name) });
      diffs.set(name, d);
      shown.push(this.redactDiff({ plugin: name, resources: d.resources }));
    }
    const hasAnyChange = shown.some(hasChanges);
    // the canonical text of {desired, current} is {"current":C,"desired":D}: C is written once for both hashes
    const currentText = canonicalJson(Object.fromEntries(current));
    const currentHash = sha256Hex(currentText);
    const hash = sha256Hex(
      `{"current":${currentText},"desired":${canonicalJson(Object.fromEntries(sections))}}`,
    );
    const plan: Plan = {
      id: randomUUID(),
      hash,
      createdAt: new Date().toISOString(),
      desired: this.redactSections(sections),
      current: this.redactSections(current),
      diffs: shown,
      hasChanges: hasAnyChange,
      irreversible: irreversibleOf(shown),
      auditSeq: -1,
    };
    if (file !== undefined) plan.file = file;
    const changes = shown.flatMap((d) => d.resources.filter(isChange).map((r) => `${d.plugin}/${r.id}`));
    const { seq } = await this.o.audit.record({
      kind: 'plan',
      actor,
      plugin: sections.size === 1 ? ([...sections.keys()][0] ?? null) : null,
      summary: `plan ${hash.slice(0, 12)}: ${changes.length === 0 ? 'no changes' : `${changes.length} change(s): ${describeChanges(shown)}`}${plan.irreversible.length > 0 ? `; irreversible: ${plan.irreversible.join(', ')}` : ''}`,
      payload: { ...plan, auditSeq: undefined },
      durations: { plan_ms: performance.now() - started },
    });
    plan.auditSeq = seq;
    const stored: StoredPlan = {
      plan,
      sections,
      current,
      diffs,
      currentHash,
      approved: false,
      owner: actor.subject,
      registry: this.registry,
    };
    this.plans.set(plan.id, stored);
    this.evictPlans(stored.owner);
    return stored;
  }

  private async applyExclusive(
    stored: StoredPlan,
    actor: AuditActor,
    confirmIrreversible: readonly string[],
  ): Promise<ApplyResponse> {
    if (this.applying !== undefined) {
      throw new OpError(
        'ApplyInProgress',
        `an apply (plan ${this.applying.planId}) is running; try again when it ends`,
      );
    }
    const unconfirmed = stored.plan.irreversible.filter((r) => !confirmIrreversible.includes(r));
    if (unconfirmed.length > 0) {
      throw new OpError(
        'NotConfirmed',
        `plan ${stored.plan.hash} has irreversible changes that were not confirmed: ${unconfirmed.join(', ')} (confirm each, e.g. op-dbus apply --confirm-irreversible)`,
        undefined,
        { irreversible: stored.plan.irreversible },
      );
    }
    const applying: Applying = { planId: stored.plan.id, cancel: new AbortController() };
    this.applying = applying;
    try {
      return await this.pinned.run(stored.registry, () =>
        this.applyLocked(stored, actor, applying.cancel.signal),
      );
    } finally {
      this.applying = undefined;
    }
  }

  private async applyLocked(
    stored: StoredPlan,
    actor: AuditActor,
    cancel: AbortSignal,
  ): Promise<ApplyResponse> {
    const { plan, sections } = stored;
    const started = performance.now();
    const current = await this.queryNamed(sections, actor);
    if (contentHash(Object.fromEntries(current)) !== stored.currentHash) {
      const changed = [...current.keys()].filter(
        (k) => contentHash(current.get(k) ?? null) !== contentHash(stored.current.get(k) ?? null),
      );
      this.plans.delete(plan.id);
      throw new OpError(
        'StalePlan',
        `plan ${plan.hash} is stale: the host changed since it was made (${changed.join(', ')}); plan again`,
      );
    }
    const changing = plan.diffs.filter(hasChanges).map((d) => d.plugin);
    if (changing.length === 0) {
      const { seq } = await this.o.audit.record({
        kind: 'apply',
        actor,
        plugin: null,
        summary: `apply plan ${plan.hash}: nothing to do`,
        payload: { planId: plan.id, hash: plan.hash },
      });
      this.plans.delete(plan.id);
      return {
        planId: plan.id,
        hash: plan.hash,
        outcome: 'nothing-to-do',
        plugins: [],
        confirmedIrreversible: [],
        auditSeq: seq,
      };
    }

    const applyId = randomUUID();
    const snapshot = this.o.snapshots?.take(`pre-apply ${plan.hash.slice(0, 16)}`);
    this.o.journal.begin({
      type: 'begin',
      applyId,
      planId: plan.id,
      hash: plan.hash,
      plugins: changing,
      time: new Date().toISOString(),
      document: Object.fromEntries(sections),
      irreversible: plan.irreversible,
      ...(stored.convergeOf !== undefined ? { convergeOf: stored.convergeOf } : {}),
      ...(snapshot !== undefined ? { snapshot: snapshot.id } : {}),
    });
    const progress = (plugin: string | null, step: ApplyProgress['step'], message: string): void =>
      this.o.onProgress?.({ planId: plan.id, plugin, step, message });
    progress(null, 'start', `applying plan ${plan.hash}`);
    const context = await this.dependencyContext(sections, current, actor);
    const options = (name: string): CallOptions => ({
      actor,
      signal: cancel,
      after: context(name),
      progress: (m) => progress(name, 'apply', m),
    });
    const between = (): void => {
      if (cancel.aborted) throw cancel.reason;
    };

    const done: { name: string; checkpoint: unknown }[] = [];
    const changed = new Map<string, number>();
    const results: ApplyResponse['plugins'] = [];
    const irreversibleRan: string[] = [];
    try {
      // reversible changes first, each plugin after the plugins it names in `after`
      for (const name of changing) {
        between();
        const plugin = this.registered(name);
        const desired = sections.get(name);
        const checkpoint = await this.calls.run(
          plugin,
          'checkpoint',
          (ctx) => plugin.impl.checkpoint(desired, ctx),
          options(name),
        );
        this.o.journal.record({ type: 'checkpoint', applyId, plugin: name, checkpoint });
        done.push({ name, checkpoint });
        progress(name, 'checkpoint', `checkpoint of ${name} saved`);
        await this.halt.at('after-journal');
        const part = only(stored.diffs.get(name), (r) => r.irreversible !== true);
        if (part.resources.some(isChange)) {
          between();
          const r = await this.calls.run(
            plugin,
            'apply',
            (ctx) => plugin.impl.apply(part, desired, ctx),
            options(name),
          );
          changed.set(name, (changed.get(name) ?? 0) + r.changed);
        }
        await this.halt.at('after-call');
        this.o.journal.record({ type: 'applied', applyId, plugin: name });
      }
      // irreversible changes last, and only confirmed ones (applyExclusive checked each)
      for (const name of changing) {
        const part = only(stored.diffs.get(name), (r) => r.irreversible === true);
        const ids = part.resources.filter(isChange).map((r) => `${name}/${r.id}`);
        if (ids.length === 0) continue;
        between();
        const plugin = this.registered(name);
        this.o.journal.record({ type: 'irreversible', applyId, plugin: name, resources: ids });
        irreversibleRan.push(...ids);
        const r = await this.calls.run(
          plugin,
          'apply',
          (ctx) => plugin.impl.apply(part, sections.get(name), ctx),
          options(name),
        );
        changed.set(name, (changed.get(name) ?? 0) + r.changed);
        await this.halt.at('after-irreversible');
      }
      for (const name of changing) {
        between();
        await this.halt.at('before-verify');
        progress(name, 'verify', `verifying ${name}`);
        await this.verifyWithRetries(this.registered(name), sections.get(name), options(name));
        this.o.journal.record({ type: 'verified', applyId, plugin: name });
        results.push({ plugin: name, changed: changed.get(name) ?? 0, verified: true });
      }
    } catch (e) {
      const cause =
        e instanceof OpError ? e : new OpError('Internal', e instanceof Error ? e.message : String(e));
      await this.rollbackAll(applyId, plan, done, actor, cause, irreversibleRan, progress, snapshot?.id);
      throw new OpError(
        cause.code === 'Cancelled' ? 'Cancelled' : 'ApplyFailed',
        `apply of plan ${plan.hash} ${cause.code === 'Cancelled' ? 'was cancelled' : 'failed'} and was rolled back: ${cause.message}`,
        cause.where,
        { cause: cause.toPayload(), ...(irreversibleRan.length > 0 ? { irreversibleRan } : {}) },
      );
    } finally {
      this.plans.delete(plan.id);
    }
    await this.halt.at('after-verify');
    // The order below is what makes a crash harmless: the host change is on record (last applied, then the
    // audit entry) before the journal says the apply ended; recovery completes whatever a crash cut short.
    this.lastApplied.save({
      planHash: stored.convergeOf?.planHash ?? plan.hash,
      appliedAt: stored.convergeOf?.appliedAt ?? new Date().toISOString(),
      ...(plan.file !== undefined ? { file: plan.file } : {}),
      sections: Object.fromEntries(sections),
    });
    await this.halt.at('after-last-applied');
    const { seq } = await this.o.audit.record({
      kind: 'apply',
      actor,
      plugin: changing.length === 1 ? (changing[0] ?? null) : null,
      summary: `apply plan ${plan.hash}: applied and verified (${results.map((r) => `${r.plugin}: ${r.changed} change(s)`).join(', ')})${irreversibleRan.length > 0 ? `; irreversible, confirmed: ${irreversibleRan.join(', ')}` : ''}: ${describeChanges(plan.diffs)}`,
      payload: { planId: plan.id, hash: plan.hash, results, confirmedIrreversible: irreversibleRan },
      durations: { apply_ms: performance.now() - started },
    });
    await this.halt.at('after-audit');
    this.o.journal.record({ type: 'end', applyId, outcome: 'applied' });
    await this.halt.at('after-end');
    this.o.snapshots?.prune(KEEP_SNAPSHOTS);
    progress(null, 'done', `plan ${plan.hash} applied and verified`);
    return {
      planId: plan.id,
      hash: plan.hash,
      outcome: 'applied',
      plugins: results,
      confirmedIrreversible: irreversibleRan,
      auditSeq: seq,
    };
  }

  private async rollbackAll(
    applyId: string,
    plan: Plan,
    done: { name: string; checkpoint: unknown }[],
    actor: AuditActor,
    cause: OpError,
    irreversibleRan: string[],
    progress: (plugin: string | null, step: ApplyProgress['step'], message: string) => void,
    snapshot: string | undefined,
  ): Promise<void> {
    const failures: string[] = [];
    for (const { name, checkpoint } of [...done].reverse()) {
      progress(name, 'rollback', `rolling back ${name}`);
      try {
        const plugin = this.registered(name);
        // a fresh signal: the apply's may be the cancelled one, and a rollback must run to its end
        await this.calls.run(plugin, 'rollback', (ctx) => plugin.impl.rollback(checkpoint, ctx), { actor });
        await this.halt.at('after-rollback-call');
        this.o.journal.record({ type: 'rolled-back', applyId, plugin: name });
        await this.o.audit.record({
          kind: 'rollback',
          actor,
          plugin: name,
          summary: `rollback ${name}: apply of plan ${plan.hash} failed: ${cause.message}`,
          payload: { cause: cause.toPayload() },
        });
        await this.halt.at('after-rollback-audit');
      } catch (e) {
        failures.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    failures.push(...this.restoreSnapshot(snapshot));
    const irreversible =
      irreversibleRan.length > 0
        ? `; irreversible changes ran and cannot be undone: ${irreversibleRan.join(', ')}`
        : '';
    await this.o.audit.record({
      kind: 'apply',
      actor,
      plugin: null,
      summary:
        failures.length === 0
          ? `apply plan ${plan.hash}: failed (${cause.message}); rolled back${irreversible}`
          : `apply plan ${plan.hash}: failed (${cause.message}); ROLLBACK FAILED: ${failures.join('; ')}${irreversible}`,
      payload: {
        planId: plan.id,
        hash: plan.hash,
        cause: cause.toPayload(),
        rollbackFailures: failures,
        irreversibleRan,
      },
    });
    await this.halt.at('after-failed-audit');
    this.o.journal.record({
      type: 'end',
      applyId,
      outcome: failures.length === 0 ? 'rolled-back' : 'rollback-failed',
    });
    await this.halt.at('after-rollback-end');
    progress(
      null,
      'failed',
      `apply ${cause.code === 'Cancelled' ? 'cancelled' : 'failed'}: ${cause.message}`,
    );
  }

  /** Puts the plugins' on-disk state back as it was before the apply; returns what failed. */
  private restoreSnapshot(id: string | undefined): string[] {
    if (id === undefined || this.o.snapshots === undefined) return [];
    try {
      this.o.snapshots.restore(id);
      return [];
    } catch (e) {
      return [`plugin state snapshot ${id}: ${e instanceof Error ? e.message : String(e)}`];
    }
  }

  private async verifyWithRetries(plugin: RegisteredPlugin, desired: unknown, o: CallOptions): Promise<void> {
    const attempts = this.o.verifyAttempts ?? 3;
    let drift: { path: string }[] = [];
    for (let i = 0; i < attempts; i++) {
      drift = (await this.calls.run(plugin, 'verify', (ctx) => plugin.impl.verify(desired, ctx), o)).drift;
      if (drift.length === 0) return;
      await new Promise((r) => setTimeout(r, 100 * (i + 1)));
    }
    throw new OpError('VerifyFailed', `after apply, ${drift.map((d) => d.path).join(', ')} still differ`, {
      plugin: plugin.name,
      ...(drift[0] !== undefined ? { pointer: drift[0].path } : {}),
    });
  }

  /** What each plugin's verify reports for these sections, secrets redacted. */
  private async driftFrom(
    sections: Map<string, unknown>,
    actor: AuditActor,
  ): Promise<VerifyResponse['drift']> {
    const drift: VerifyResponse['drift'] = [];
    for (const [name, desired] of sections) {
      const plugin = await this.availablePlugin(name, actor);
      const result = await this.calls.run(plugin, 'verify', (ctx) => plugin.impl.verify(desired, ctx), {
        actor,
      });
      for (const d of result.drift) {
        const at = pathBelowSection(d.path, name);
        drift.push({
          plugin: name,
          path: d.path,
          expected: redactAt(plugin.schema, at, d.expected),
          actual: redactAt(plugin.schema, at, d.actual),
        });
      }
    }
    return drift;
  }

  private async queryNamed(sections: Map<string, unknown>, actor: AuditActor): Promise<Map<string, unknown>> {
    const current = new Map<string, unknown>();
    for (const name of sections.keys()) {
      const plugin = await this.availablePlugin(name, actor);
      current.set(name, await this.calls.run(plugin, 'query', (ctx) => plugin.impl.query(ctx), { actor }));
    }
    return current;
  }

  /**
   * For each plugin, the desired and current state of the plugins it comes after, as frozen copies:
   * dependencies the document does not name are queried for their current state (when available).
   */
  private async dependencyContext(
    sections: Map<string, unknown>,
    current: Map<string, unknown>,
    actor: AuditActor,
  ): Promise<(name: string) => Record<string, DependencyState>> {
    const extra = new Map<string, unknown>();
    for (const name of sections.keys()) {
      for (const dep of this.registered(name).after) {
        if (current.has(dep) || extra.has(dep)) continue;
        const plugin = this.registered(dep);
        if (!(await this.availability(plugin, actor)).available) continue;
        extra.set(dep, await this.calls.run(plugin, 'query', (ctx) => plugin.impl.query(ctx), { actor }));
      }
    }
    return (name) => {
      const out: Record<string, DependencyState> = {};
      for (const dep of this.registered(name).after) {
        const state: DependencyState = {};
        if (sections.has(dep)) state.desired = frozenCopy(sections.get(dep));
        const now = current.has(dep) ? current.get(dep) : extra.get(dep);
        if (now !== undefined) state.current = frozenCopy(now);
        out[dep] = Object.freeze(state);
      }
      return Object.freeze(out);
    };
  }

  private async availability(
    plugin: RegisteredPlugin,
    actor: AuditActor,
  ): Promise<{ available: boolean; reason: string }> {
    try {
      const a = await this.calls.run(plugin, 'available', (ctx) => plugin.impl.available(ctx), { actor });
      return a.available ? { available: true, reason: '' } : { available: false, reason: a.reason };
    } catch (e) {
      return { available: false, reason: pluginError(plugin.name, 'available', e).message };
    }
  }

  private async availablePlugin(name: string, actor: AuditActor): Promise<RegisteredPlugin> {
    const plugin = this.registered(name);
    const a = await this.availability(plugin, actor);
    if (!a.available)
      throw new OpError('PluginUnavailable', `plugin ${name} is unavailable: ${a.reason}`, { plugin: name });
    return plugin;
  }

  private registered(name: string): RegisteredPlugin {
    const p = this.registry.get(name);
    if (p === undefined) throw new OpError('UnknownPlugin', `unknown plugin "${name}"`, { plugin: name });
    return p;
  }

  /** Sections of a stored document, in the registry's apply order (plugins no longer installed are an error). */
  private inRegistryOrder(sections: Record<string, unknown>): Map<string, unknown> {
    for (const name of Object.keys(sections)) this.registered(name);
    return new Map(
      this.registry.names.filter((n) => Object.hasOwn(sections, n)).map((n) => [n, sections[n]]),
    );
  }

  private storedPlan(planId: string, hash: string): StoredPlan {
    const stored = this.plans.get(planId);
    if (stored === undefined) {
      throw new OpError(
        'PlanNotFound',
        `no plan ${planId} (plans live until applied, or until the core restarts)`,
      );
    }
    if (stored.plan.hash !== hash) {
      throw new OpError('HashMismatch', `plan ${planId} has hash ${stored.plan.hash}, not ${hash}`);
    }
    return stored;
  }

  private redactDiff(d: PluginDiff): PluginDiff {
    const schema = this.registry.jsonSchema(d.plugin);
    return {
      plugin: d.plugin,
      resources: d.resources.map((r) => ({
        ...r,
        changes: r.changes.map((c) => {
          const at = pathBelowSection(c.path, d.plugin);
          return {
            path: c.path,
            before: redactAt(schema, at, c.before),
            after: redactAt(schema, at, c.after),
          };
        }),
      })),
    };
  }

  private redactSections(m: Map<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of m) out[k] = redactSecrets(v, this.registry.jsonSchema(k));
    return out;
  }

  /**
   * Keeps the plan table bounded without letting one caller evict another's plans: a caller's
   * unapproved plans beyond its quota go oldest first; approved plans (which took an admin) are
   * bounded on their own. The running apply's plan is never evicted.
   */
  private evictPlans(owner: string): void {
    const evict = (ids: string[], keep: number): void => {
      for (const id of ids.slice(0, Math.max(0, ids.length - keep))) {
        if (id !== this.applying?.planId) this.plans.delete(id);
      }
    };
    const entries = [...this.plans.entries()];
    evict(
      entries.filter(([, p]) => !p.approved && p.owner === owner).map(([id]) => id),
      MAX_PLANS_PER_CALLER,
    );
    evict(
      entries.filter(([, p]) => p.approved).map(([id]) => id),
      MAX_APPROVED_PLANS,
    );
  }
}

/**
 * A plugin's error about the document (a pointer, no position) at its file, line and column; the
 * problems its details list each get theirs too.
 */
function located(e: unknown, parsed: ParsedDocument): unknown {
  if (!(e instanceof OpError) || e.where?.pointer === undefined || e.where.line !== undefined) return e;
  const details = e.details as { problems?: unknown } | undefined;
  const problems = Array.isArray(details?.problems)
    ? (details.problems as { pointer?: unknown }[]).map((p) =>
        typeof p.pointer === 'string' ? { ...p, ...parsed.locate(p.pointer) } : p,
      )
    : undefined;
  return new OpError(
    e.code,
    e.message,
    { ...parsed.where(e.where.pointer), ...e.where, ...parsed.locate(e.where.pointer) },
    problems !== undefined ? { ...details, problems } : e.details,
  );
}

function describePlugin(
  p: {
    name: string;
    version: string;
    source: PluginInfo['source'];
    manifest: RegisteredPlugin['manifest'];
    isolation?: RegisteredPlugin['isolation'];
    writable?: boolean;
    readOnlyBecause?: string;
    service?: string;
  },
  after: string[],
): Omit<PluginInfo, 'available' | 'notes'> {
  const readOnly = p.writable === false || p.manifest.plugin.read_only === true;
  return {
    name: p.name,
    version: p.version,
    source: p.source,
    isolation: p.isolation ?? (p.source === 'built-in' ? 'in-process' : 'out-of-process'),
    writable: !readOnly,
    ...(readOnly ? { read_only_because: p.readOnlyBecause ?? 'its manifest says read_only' } : {}),
    ...((p.service ?? p.manifest.plugin.dbus_service) !== undefined
      ? { service: p.service ?? p.manifest.plugin.dbus_service }
      : {}),
    ...(p.manifest.plugin.description !== undefined ? { description: p.manifest.plugin.description } : {}),
    after,
    permissions: { dbus: p.manifest.permissions.dbus },
    deadline_s: p.manifest.limits.deadline_s,
  };
}

function isChange(r: ResourceDiff): boolean {
  return r.action !== 'noop';
}

function hasChanges(d: PluginDiff): boolean {
  return d.resources.some(isChange);
}

function countChanges(plan: Plan): number {
  return plan.diffs.reduce((n, d) => n + d.resources.filter(isChange).length, 0);
}

function irreversibleOf(diffs: PluginDiff[]): string[] {
  return diffs.flatMap((d) =>
    d.resources.filter((r) => r.irreversible === true && isChange(r)).map((r) => `${d.plugin}/${r.id}`),
  );
}

function only(diff: SectionDiff | undefined, keep: (r: ResourceDiff) => boolean): SectionDiff {
  return { resources: (diff?.resources ?? []).filter(keep) };
}

function frozenCopy<T>(value: T): T {
  const copy = structuredClone(value);
  const freeze = (v: unknown): void => {
    if (v !== null && typeof v === 'object') {
      Object.freeze(v);
      for (const child of Object.values(v)) freeze(child);
    }
  };
  freeze(copy);
  return copy;
}

/** Path segments below `/plugins/<name>` of a document pointer. */
function pathBelowSection(pointer: string, plugin: string): string[] {
  const prefix = `/plugins/${plugin}`;
  const rest = pointer.startsWith(prefix) ? pointer.slice(prefix.length) : pointer;
  return rest === ''
    ? []
    : rest
        .slice(1)
        .split('/')
        .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}
