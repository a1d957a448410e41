import { randomUUID } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  OpError,
  type ApplyProgress,
  type ApplyResponse,
  type ApproveResponse,
  type AuditActor,
  type Plan,
  type PluginDiff,
  type QueryResponse,
  type VerifyResponse,
} from '../../common/contract/index.js';
import type { AppendInput } from '../audit/entry.js';
import { contentHash } from '../../common/canonical/jcs.js';
import { parseDesiredDocument } from './document.js';
import type { ApplyJournal } from './journal.js';
import type { AnyStatePlugin } from './plugin.js';
import { isSecretPath, redactSecrets } from './redact.js';
import type { PluginRegistry } from './registry.js';

/** Where the engine writes its history: resolves once the entry is committed (group commit batches them). */
export interface AuditSink {
  record(input: AppendInput): Promise<{ seq: number }>;
}

/** Step boundaries of an apply where a test can halt the core to kill it there (fault injection). */
export const HALT_POINTS = ['after-journal', 'after-call', 'before-verify', 'after-verify'] as const;
export type HaltPoint = (typeof HALT_POINTS)[number];

/** Snapshots of the plugins' on-disk state (never the audit log): taken before an apply, restored on rollback. */
export interface PluginStateStore {
  take(label: string): { id: string };
  restore(id: string): void;
  prune(keep: number): unknown;
}

export interface EngineOptions {
  registry: PluginRegistry;
  snapshots?: PluginStateStore;
  audit: AuditSink;
  journal: ApplyJournal;
  dataDir: string;
  onProgress?: (p: ApplyProgress) => void;
  /** Test-only: stop forever at this boundary (after writing `halted-at` in the data dir) so a test can kill -9. */
  haltAt?: HaltPoint | undefined;
  verifyAttempts?: number;
}

interface StoredPlan {
  plan: Plan;
  sections: Map<string, unknown>;
  current: Map<string, unknown>;
  currentHash: string;
  approved: boolean;
}

const CORE_ACTOR: AuditActor = { uid: null, subject: 'core' };
/** Pre-apply snapshots kept after a successful apply. */
const KEEP_SNAPSHOTS = 10;
const MAX_PLANS = 64;

/** Plan → approve → apply → verify → rollback, with the journal and the audit log (DESIGN.md section 4). */
export class StateEngine {
  private readonly plans = new Map<string, StoredPlan>();
  private applying: string | undefined;
  private readonly o: EngineOptions;

  constructor(options: EngineOptions) {
    this.o = options;
  }

  /** The current state of each plugin (or why it is unavailable). */
  async query(pluginNames: string[] | undefined, actor: AuditActor): Promise<QueryResponse> {
    const names = pluginNames ?? this.o.registry.names;
    const out: QueryResponse['plugins'] = [];
    for (const name of names) {
      const plugin = this.plugin(name);
      const availability = await plugin.available();
      if (!availability.available) {
        out.push({ plugin: name, version: plugin.version, available: false, reason: availability.reason });
        continue;
      }
      const state = redactSecrets(await plugin.query(), this.o.registry.jsonSchema(name));
      out.push({ plugin: name, version: plugin.version, available: true, state });
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
    const started = performance.now();
    const sections = this.o.registry.validate(parseDesiredDocument(document, file));
    const current = await this.queryNamed(sections);
    const diffs: PluginDiff[] = [];
    for (const [name, desired] of sections) {
      const d = this.plugin(name).diff(current.get(name), desired);
      diffs.push(this.redactDiff(d));
    }
    const hasChanges = diffs.some((d) => d.resources.some((r) => r.action !== 'noop'));
    const currentHash = contentHash(Object.fromEntries(current));
    const hash = contentHash({ desired: Object.fromEntries(sections), current: Object.fromEntries(current) });
    const id = randomUUID();
    const plan: Plan = {
      id,
      hash,
      createdAt: new Date().toISOString(),
      desired: this.redactSections(sections),
      current: this.redactSections(current),
      diffs,
      hasChanges,
      auditSeq: -1,
    };
    if (file !== undefined) plan.file = file;
    const changes = diffs.flatMap((d) =>
      d.resources.filter((r) => r.action !== 'noop').map((r) => `${d.plugin}/${r.id}`),
    );
    const { seq } = await this.o.audit.record({
      kind: 'plan',
      actor,
      plugin: sections.size === 1 ? ([...sections.keys()][0] ?? null) : null,
      summary: `plan ${hash.slice(0, 12)}: ${changes.length === 0 ? 'no changes' : `${changes.length} change(s): ${changes.join(', ')}`}`,
      payload: { ...plan, auditSeq: undefined },
      durations: { plan_ms: performance.now() - started },
    });
    plan.auditSeq = seq;
    this.plans.set(id, { plan, sections, current, currentHash, approved: false });
    this.evictOldPlans();
    return plan;
  }

  /** Records the admin's approval of exactly this plan hash. */
  async approve(planId: string, hash: string, actor: AuditActor): Promise<ApproveResponse> {
    const stored = this.storedPlan(planId, hash);
    stored.approved = true;
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

  /** Applies an approved plan: refuses stale plans and a second concurrent apply; rolls back on failure. */
  async apply(planId: string, hash: string, actor: AuditActor): Promise<ApplyResponse> {
    if (this.applying !== undefined) {
      throw new OpError(
        'ApplyInProgress',
        `an apply (plan ${this.applying}) is running; try again when it ends`,
      );
    }
    const stored = this.storedPlan(planId, hash);
    if (!stored.approved) throw new OpError('NotApproved', `plan ${hash} has not been approved`);
    this.applying = planId;
    try {
      return await this.applyLocked(stored, actor);
    } finally {
      this.applying = undefined;
    }
  }

  /** Compares the host with a document, naming every value that differs. */
  async verify(document: string, file: string | undefined, actor: AuditActor): Promise<VerifyResponse> {
    const sections = this.o.registry.validate(parseDesiredDocument(document, file));
    const drift: VerifyResponse['drift'] = [];
    for (const [name, desired] of sections) {
      const plugin = await this.availablePlugin(name);
      const schema = this.o.registry.jsonSchema(name);
      for (const d of (await plugin.verify(desired)).drift) {
        const secret = isSecretPath(schema, pathBelowSection(d.path, name));
        drift.push({
          plugin: name,
          ...d,
          ...(secret ? { expected: '«redacted»', actual: '«redacted»' } : {}),
        });
      }
    }
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
      this.o.journal.record({ type: 'end', applyId: begin.applyId, outcome: 'applied' });
      const summary = `recovery: apply of plan ${begin.hash} was fully applied and verified before the core stopped`;
      await this.o.audit.record({
        kind: 'recovery',
        actor: CORE_ACTOR,
        plugin: null,
        summary,
        payload: begin,
      });
      return summary;
    }
    const toUndo = begin.plugins
      .filter((p) => unfinished.checkpoints.has(p) && !unfinished.rolledBack.has(p))
      .reverse();
    const failures: string[] = [];
    for (const name of toUndo) {
      const plugin = this.o.registry.get(name);
      try {
        if (plugin === undefined) throw new Error(`plugin ${name} is no longer registered`);
        await plugin.rollback(unfinished.checkpoints.get(name));
        this.o.journal.record({ type: 'rolled-back', applyId: begin.applyId, plugin: name });
        await this.o.audit.record({
          kind: 'rollback',
          actor: CORE_ACTOR,
          plugin: name,
          summary: `rollback ${name}: unfinished apply of plan ${begin.hash} undone at start-up`,
          payload: {
            checkpoint: redactSecrets(unfinished.checkpoints.get(name), this.o.registry.jsonSchema(name)),
          },
        });
      } catch (e) {
        failures.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    failures.push(...this.restoreSnapshot(begin.snapshot));
    const outcome = failures.length === 0 ? 'rolled-back' : 'rollback-failed';
    this.o.journal.record({ type: 'end', applyId: begin.applyId, outcome });
    const summary =
      failures.length === 0
        ? `recovery: unfinished apply of plan ${begin.hash} rolled back (${toUndo.join(', ') || 'nothing had changed'}); host is at its earlier state`
        : `recovery: rollback of plan ${begin.hash} FAILED: ${failures.join('; ')}`;
    await this.o.audit.record({
      kind: 'recovery',
      actor: CORE_ACTOR,
      plugin: null,
      summary,
      payload: { begin, failures },
    });
    return summary;
  }

  private async applyLocked(stored: StoredPlan, actor: AuditActor): Promise<ApplyResponse> {
    const { plan, sections } = stored;
    const started = performance.now();
    const current = await this.queryNamed(sections);
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
    const changing = plan.diffs
      .filter((d) => d.resources.some((r) => r.action !== 'noop'))
      .map((d) => d.plugin);
    if (changing.length === 0) {
      const { seq } = await this.o.audit.record({
        kind: 'apply',
        actor,
        plugin: null,
        summary: `apply plan ${plan.hash}: nothing to do`,
        payload: { planId: plan.id, hash: plan.hash },
      });
      this.plans.delete(plan.id);
      return { planId: plan.id, hash: plan.hash, outcome: 'nothing-to-do', plugins: [], auditSeq: seq };
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
      ...(snapshot !== undefined ? { snapshot: snapshot.id } : {}),
    });
    const progress = (plugin: string | null, step: ApplyProgress['step'], message: string): void =>
      this.o.onProgress?.({ planId: plan.id, plugin, step, message });
    progress(null, 'start', `applying plan ${plan.hash}`);

    const done: { name: string; checkpoint: unknown }[] = [];
    const results: ApplyResponse['plugins'] = [];
    const abort = new AbortController();
    try {
      for (const name of changing) {
        const plugin = this.plugin(name);
        const desired = sections.get(name);
        const diff = plan.diffs.find((d) => d.plugin === name);
        if (diff === undefined) continue;
        const checkpoint = await plugin.checkpoint(desired);
        this.o.journal.record({ type: 'checkpoint', applyId, plugin: name, checkpoint });
        done.push({ name, checkpoint });
        progress(name, 'checkpoint', `checkpoint of ${name} saved`);
        await this.haltIf('after-journal');
        // the plugin gets the real diff: the one in the plan is redacted for display
        const { changed } = await plugin.apply(plugin.diff(current.get(name), desired), desired, {
          signal: abort.signal,
          progress: (m) => progress(name, 'apply', m),
        });
        await this.haltIf('after-call');
        this.o.journal.record({ type: 'applied', applyId, plugin: name });
        await this.haltIf('before-verify');
        progress(name, 'verify', `verifying ${name}`);
        await this.verifyWithRetries(plugin, desired);
        this.o.journal.record({ type: 'verified', applyId, plugin: name });
        results.push({ plugin: name, changed, verified: true });
      }
    } catch (e) {
      const cause =
        e instanceof OpError ? e : new OpError('Internal', e instanceof Error ? e.message : String(e));
      await this.rollbackAll(applyId, plan, done, actor, cause, progress, snapshot?.id);
      throw new OpError(
        'ApplyFailed',
        `apply of plan ${plan.hash} failed and was rolled back: ${cause.message}`,
        cause.where,
        { cause: cause.toPayload() },
      );
    } finally {
      this.plans.delete(plan.id);
    }
    await this.haltIf('after-verify');
    this.o.journal.record({ type: 'end', applyId, outcome: 'applied' });
    this.o.snapshots?.prune(KEEP_SNAPSHOTS);
    const { seq } = await this.o.audit.record({
      kind: 'apply',
      actor,
      plugin: changing.length === 1 ? (changing[0] ?? null) : null,
      summary: `apply plan ${plan.hash}: applied and verified (${results.map((r) => `${r.plugin}: ${r.changed} change(s)`).join(', ')})`,
      payload: { planId: plan.id, hash: plan.hash, results },
      durations: { apply_ms: performance.now() - started },
    });
    progress(null, 'done', `plan ${plan.hash} applied and verified`);
    return { planId: plan.id, hash: plan.hash, outcome: 'applied', plugins: results, auditSeq: seq };
  }

  private async rollbackAll(
    applyId: string,
    plan: Plan,
    done: { name: string; checkpoint: unknown }[],
    actor: AuditActor,
    cause: OpError,
    progress: (plugin: string | null, step: ApplyProgress['step'], message: string) => void,
    snapshot: string | undefined,
  ): Promise<void> {
    const failures: string[] = [];
    for (const { name, checkpoint } of [...done].reverse()) {
      progress(name, 'rollback', `rolling back ${name}`);
      try {
        await this.plugin(name).rollback(checkpoint);
        this.o.journal.record({ type: 'rolled-back', applyId, plugin: name });
        await this.o.audit.record({
          kind: 'rollback',
          actor,
          plugin: name,
          summary: `rollback ${name}: apply of plan ${plan.hash} failed: ${cause.message}`,
          payload: { cause: cause.toPayload() },
        });
      } catch (e) {
        failures.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    failures.push(...this.restoreSnapshot(snapshot));
    this.o.journal.record({
      type: 'end',
      applyId,
      outcome: failures.length === 0 ? 'rolled-back' : 'rollback-failed',
    });
    await this.o.audit.record({
      kind: 'apply',
      actor,
      plugin: null,
      summary:
        failures.length === 0
          ? `apply plan ${plan.hash}: failed (${cause.message}); rolled back`
          : `apply plan ${plan.hash}: failed (${cause.message}); ROLLBACK FAILED: ${failures.join('; ')}`,
      payload: { planId: plan.id, hash: plan.hash, cause: cause.toPayload(), rollbackFailures: failures },
    });
    progress(null, 'failed', `apply failed: ${cause.message}`);
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

  private async verifyWithRetries(plugin: AnyStatePlugin, desired: unknown): Promise<void> {
    const attempts = this.o.verifyAttempts ?? 3;
    let drift: { path: string }[] = [];
    for (let i = 0; i < attempts; i++) {
      drift = (await plugin.verify(desired)).drift;
      if (drift.length === 0) return;
      await new Promise((r) => setTimeout(r, 100 * (i + 1)));
    }
    throw new OpError('VerifyFailed', `after apply, ${drift.map((d) => d.path).join(', ')} still differ`, {
      plugin: plugin.name,
      ...(drift[0] !== undefined ? { pointer: drift[0].path } : {}),
    });
  }

  private async haltIf(point: HaltPoint): Promise<void> {
    if (this.o.haltAt !== point) return;
    // Written under another name and renamed, so whoever waits for the marker never reads it half-written.
    const marker = join(this.o.dataDir, 'halted-at');
    writeFileSync(`${marker}.tmp`, point);
    renameSync(`${marker}.tmp`, marker);
    await new Promise<never>(() => undefined);
  }

  private async queryNamed(sections: Map<string, unknown>): Promise<Map<string, unknown>> {
    const current = new Map<string, unknown>();
    for (const name of sections.keys()) current.set(name, await (await this.availablePlugin(name)).query());
    return current;
  }

  private async availablePlugin(name: string): Promise<AnyStatePlugin> {
    const plugin = this.plugin(name);
    const a = await plugin.available();
    if (!a.available)
      throw new OpError('PluginUnavailable', `plugin ${name} is unavailable: ${a.reason}`, { plugin: name });
    return plugin;
  }

  private plugin(name: string): AnyStatePlugin {
    const p = this.o.registry.get(name);
    if (p === undefined) throw new OpError('UnknownPlugin', `unknown plugin "${name}"`, { plugin: name });
    return p;
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
    const schema = this.o.registry.jsonSchema(d.plugin);
    return {
      plugin: d.plugin,
      resources: d.resources.map((r) => ({
        ...r,
        changes: r.changes.map((c) =>
          isSecretPath(schema, pathBelowSection(c.path, d.plugin))
            ? { path: c.path, before: c.before === undefined ? c.before : '«redacted»', after: '«redacted»' }
            : c,
        ),
      })),
    };
  }

  private redactSections(m: Map<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of m) out[k] = redactSecrets(v, this.o.registry.jsonSchema(k));
    return out;
  }

  private evictOldPlans(): void {
    while (this.plans.size > MAX_PLANS) {
      const oldest = this.plans.keys().next().value;
      if (oldest === undefined || oldest === this.applying) break;
      this.plans.delete(oldest);
    }
  }
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
