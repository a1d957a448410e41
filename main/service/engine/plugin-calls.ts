import { z } from 'zod';
import { OpError, ResourceDiff, type AuditActor } from '../../common/contract/index.js';
import type { MessageBus } from '../../common/dbus/calls.js';
import type { DependencyState, PluginContext, SectionDiff } from '../../sdk/index.js';
import { PermissionedBus, type RefusedCall } from '../plugins/bus-facade.js';
import type { RegisteredPlugin } from './registry.js';

/** What every call into a plugin may be given by the engine beyond the plugin itself. */
export interface CallOptions {
  /** The apply's cancellation: the plugin's own signal is aborted with it. */
  signal?: AbortSignal;
  after?: Readonly<Record<string, DependencyState>>;
  progress?: (message: string) => void;
  /** Who the call is made for: a refused bus call is audited under this actor. */
  actor: AuditActor;
}

/** Where the engine reports what plugins do that is not their result. */
export interface PluginCallSinks {
  bus: () => MessageBus;
  onRefused: (refused: RefusedCall, actor: AuditActor) => Promise<unknown>;
  /** What an isolated plugin did that the audit log keeps: each bus call it made, each failure. */
  onIsolated?: (
    event: { plugin: string; summary: string; payload: unknown },
    actor: AuditActor,
  ) => Promise<unknown>;
  log: (line: string) => void;
}

const SectionDiffResult = z.object({ resources: z.array(ResourceDiff) });

/**
 * Calls into plugins: each call gets a fresh context (a permission-checked bus, the signal, the
 * deadline, the state of the plugins it comes after), is abandoned at the manifest's deadline, and any
 * error it throws comes back as an OpError that keeps the plugin's name.
 */
export class PluginCalls {
  constructor(private readonly sinks: PluginCallSinks) {}

  async run<T>(
    plugin: RegisteredPlugin,
    step: string,
    call: (ctx: PluginContext) => Promise<T>,
    o: CallOptions,
  ): Promise<T> {
    const deadlineS = plugin.manifest.limits.deadline_s;
    const controller = new AbortController();
    const onParentAbort = (): void => controller.abort(o.signal?.reason);
    if (o.signal?.aborted === true) throw o.signal.reason;
    o.signal?.addEventListener('abort', onParentAbort, { once: true });
    const refusals: Promise<unknown>[] = [];
    const isolated = plugin.isolation === 'out-of-process' ? this.sinks.onIsolated : undefined;
    const ctx: PluginContext = {
      plugin: plugin.name,
      config: Object.freeze({ ...plugin.manifest.config }),
      bus: new PermissionedBus(
        plugin.name,
        plugin.manifest.permissions.dbus,
        this.sinks.bus,
        (refused) => refusals.push(this.sinks.onRefused(refused, o.actor).catch(() => undefined)),
        isolated === undefined
          ? undefined
          : (c) =>
              refusals.push(
                isolated(
                  {
                    plugin: plugin.name,
                    summary: `plugin ${plugin.name} (isolated) called ${c.interface}.${c.member} on ${c.destination} ${c.path} with the core's authority`,
                    payload: c,
                  },
                  o.actor,
                ).catch(() => undefined),
              ),
      ),
      signal: controller.signal,
      deadline: Date.now() + deadlineS * 1000,
      after: o.after ?? {},
      log: {
        info: (m) => this.sinks.log(`plugin ${plugin.name}: ${m}`),
        warn: (m) => this.sinks.log(`plugin ${plugin.name}: warning: ${m}`),
      },
      progress: (m) => o.progress?.(m),
    };
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const e = new OpError(
          'DeadlineExceeded',
          `plugin ${plugin.name} did not finish ${step} within its deadline of ${deadlineS} s; abandoned`,
          { plugin: plugin.name },
        );
        controller.abort(e);
        reject(e);
      }, deadlineS * 1000);
    });
    try {
      return await Promise.race([call(ctx), deadline]);
    } catch (e) {
      const error = pluginError(plugin.name, step, e);
      if (isolated !== undefined) {
        refusals.push(
          isolated(
            {
              plugin: plugin.name,
              summary: `plugin ${plugin.name} (isolated) ${step}: ${error.message}`.slice(0, 2000),
              payload: { step, code: error.code },
            },
            o.actor,
          ).catch(() => undefined),
        );
      }
      throw error;
    } finally {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onParentAbort);
      await Promise.all(refusals);
    }
  }

  /** The plugin's diff, checked: a plugin is untrusted code, and its result must be the contract's shape. */
  async diff(
    plugin: RegisteredPlugin,
    current: unknown,
    desired: unknown,
    o: CallOptions,
  ): Promise<SectionDiff> {
    const result = await this.run(plugin, 'diff', (ctx) => plugin.impl.diff(current, desired, ctx), o);
    const parsed = SectionDiffResult.safeParse(result);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new OpError(
        'PluginFailed',
        `plugin ${plugin.name} returned a diff that is not { resources: [...] }: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`,
        { plugin: plugin.name },
      );
    }
    return parsed.data;
  }
}

/** An error out of a plugin as an OpError that names the plugin (its own OpErrors keep their code). */
export function pluginError(plugin: string, step: string, e: unknown): OpError {
  if (e instanceof OpError) {
    if (e.where?.plugin !== undefined) return e;
    return new OpError(e.code, e.message, { ...e.where, plugin }, e.details);
  }
  const input = e as { name?: unknown; pointer?: unknown; problems?: unknown; message?: unknown };
  if (e instanceof Error && input.name === 'InputError' && typeof input.pointer === 'string') {
    // desired state the plugin refused (the SDK's InputError): reported like a schema error, at its pointer
    const problems = input.problems;
    return new OpError(
      'SchemaError',
      `plugin ${plugin}: ${e.message}`,
      { plugin, pointer: input.pointer },
      Array.isArray(problems) ? { problems } : undefined,
    );
  }
  const message = e instanceof Error ? e.message : String(e);
  return new OpError('PluginFailed', `plugin ${plugin} failed in ${step}: ${message}`, { plugin });
}
