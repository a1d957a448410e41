import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, OpError } from '../../common/contract/index.js';
import type { PluginContext, StatePlugin } from '../../sdk/index.js';
import type { GeneratedSpec } from '../../common/generated/spec.js';
import { decode, encode, errorOf, isRead, LineReader, readKey } from './wire.js';

// An untrusted plugin (community or generated) as a StatePlugin of the core whose every method runs
// in a child process: bubblewrap with a read-only root, no network (its own network namespace has
// only lo), no capabilities, the core's data dir hidden, as the unprivileged user nobody. It gets no
// bus socket at all: its bus calls come back here and go through the same permission-checked bus
// an in-process plugin gets, so they reach the service with the core's authority, or are refused.

/** The unprivileged user isolated plugins run as. */
export const PLUGIN_UID = 65534;
export const PLUGIN_GID = 65534;
/** Bytes of stdout and stderr a plugin may write (it is drained meanwhile); past this it is killed. */
export const OUTPUT_LIMIT = 16 * 1024 * 1024;
const OUTPUT_TAIL = 2048;

export interface IsolationOptions {
  name: string;
  /** What the child loads: a community plugin's entry module, or a generated plugin's spec. */
  start: { kind: 'community'; entry: string } | { kind: 'generated'; spec: GeneratedSpec };
  /** Directories the child may read (the plugin's own), bound read-only over its tmpfs /tmp. */
  readable: string[];
  /** Directories its manifest's [isolation] write names, bound read-write (they must exist). */
  writable?: string[];
  /** Its own directory to write (created for it, owned by its user). */
  stateDir: string;
  /** Directories hidden from it behind an empty tmpfs (the core's data dir and its keys). */
  hidden: string[];
}

type Pending = {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  ctx: PluginContext;
  /** The method of the call (a describe has none). */
  method?: string;
  /** The reads the child asked for before its first write in this call, in order. */
  reads?: BusRead[];
  /** Whether the child has made a call that is not a read in this call. */
  wrote?: boolean;
  /** The reads made ahead for this call, by their keys. */
  ahead?: Map<string, BusRead>;
};

/** A bus operation of the child: what it asks the core for, as the wire carries it. */
interface BusRead {
  kind: string;
  args: unknown[];
}

/**
 * Reads the core makes for a call before the child asks (learned from the method's previous call):
 * at most this many, so a plugin cannot make the core read much that it never uses.
 */
export const PREFETCH_LIMIT = 8;

const METHODS = ['available', 'query', 'diff', 'checkpoint', 'apply', 'verify', 'rollback'] as const;

/** The child's module: next to this one (the build), or in dist/ when the sources run (tests). */
function childMain(): string {
  const here = fileURLToPath(new URL('./child-main.js', import.meta.url));
  if (existsSync(here)) return here;
  return fileURLToPath(new URL('../../../dist/main/service/isolation/child-main.js', import.meta.url));
}

/** The bwrap command line of a plugin's child (exported for the tests and `plugin show`). */
export function sandboxArgs(o: IsolationOptions, node = process.execPath): string[] {
  const args = [
    '--ro-bind',
    '/',
    '/',
    '--dev',
    '/dev',
    '--proc',
    '/proc',
    '--tmpfs',
    '/tmp',
    '--tmpfs',
    '/run',
  ];
  for (const d of o.hidden) if (existsSync(d)) args.push('--tmpfs', d);
  for (const d of o.readable) args.push('--ro-bind', d, d);
  const main = childMain();
  args.push(
    '--ro-bind',
    main.replace(/\/main\/service\/isolation\/child-main\.js$/, ''),
    main.replace(/\/main\/service\/isolation\/child-main\.js$/, ''),
  );
  for (const d of o.writable ?? []) if (existsSync(d)) args.push('--bind', d, d);
  args.push('--bind', o.stateDir, o.stateDir);
  args.push(
    '--unshare-all',
    '--die-with-parent',
    '--new-session',
    '--cap-drop',
    'ALL',
    '--clearenv',
    '--setenv',
    'PATH',
    '/usr/bin:/bin',
    '--setenv',
    'HOME',
    o.stateDir,
    '--setenv',
    'OP_DBUS_PLUGIN_STATE_DIR',
    o.stateDir,
    '--chdir',
    o.stateDir,
    '--',
    node,
    '--max-old-space-size=192',
    main,
  );
  return args;
}

/** One isolated plugin: its child is started on the first call, and again after it died or was killed. */
export class IsolatedPlugin {
  private child: ChildProcess | undefined;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private outputBytes = 0;
  private outputTail = '';
  private killedBecause: string | undefined;
  private loadError: string | undefined;
  /** Per method, the reads its last call made before it wrote: made again at the next call's start. */
  private readonly learned = new Map<string, BusRead[]>();
  /** Bus operations of its calls so far: relayed when the child asked, or read ahead and taken. */
  readonly stats = { relayed: 0, readAhead: 0, taken: 0 };
  readonly impl: StatePlugin;

  constructor(private readonly o: IsolationOptions) {
    const impl: Record<string, (...a: unknown[]) => Promise<unknown>> = {};
    for (const m of METHODS) {
      impl[m] = (...a: unknown[]) => {
        const ctx = a[a.length - 1] as PluginContext;
        return this.request(m, a.slice(0, -1), ctx);
      };
    }
    this.impl = impl as unknown as StatePlugin;
  }

  /** Loads the plugin in its child and says which methods it has and the schema it exports. */
  async describe(deadlineMs: number): Promise<{ methods: string[]; schema: unknown }> {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new Error(`no answer within ${deadlineMs} ms`)),
      deadlineMs,
    );
    try {
      this.ensure();
      const id = ++this.seq;
      const ctx = { signal: controller.signal } as PluginContext;
      const answer = new Promise<unknown>((resolve, reject) => {
        this.pending.set(id, { resolve, reject, ctx });
        controller.signal.addEventListener('abort', () => this.kill('it did not load in time'), {
          once: true,
        });
      });
      this.write({ op: 'describe', id });
      return (await answer) as { methods: string[]; schema: unknown };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops the child, if one runs. */
  close(): void {
    this.kill('the core stopped it');
  }

  private ensure(): ChildProcess {
    if (this.child !== undefined) return this.child;
    mkdirSync(dirname(this.o.stateDir), { recursive: true, mode: 0o755 });
    mkdirSync(this.o.stateDir, { recursive: true, mode: 0o700 });
    chownSync(this.o.stateDir, PLUGIN_UID, PLUGIN_GID);
    const child = spawn('bwrap', sandboxArgs(this.o), {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      uid: PLUGIN_UID,
      gid: PLUGIN_GID,
      detached: true,
      env: { PATH: '/usr/bin:/bin' },
    });
    this.child = child;
    this.outputBytes = 0;
    this.outputTail = '';
    this.killedBecause = undefined;
    this.loadError = undefined;
    const drain = (chunk: Buffer): void => {
      this.outputBytes += chunk.length;
      this.outputTail = (this.outputTail + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
      if (this.outputBytes > OUTPUT_LIMIT) this.kill(`it wrote more than ${OUTPUT_LIMIT} bytes of output`);
    };
    child.stdout?.on('data', drain);
    child.stderr?.on('data', drain);
    const channel = child.stdio[3] as NodeJS.ReadableStream | null;
    const reader = new LineReader(
      (line) => this.onMessage(line),
      () => this.kill('it sent a message longer than the protocol allows'),
    );
    channel?.setEncoding('utf8');
    channel?.on('data', (c: string) => reader.push(c));
    child.stdin?.on('error', () => undefined);
    child.on('error', (e) => this.onExit(`could not be started: ${e.message}`));
    child.on('exit', (code, signal) => {
      if (this.child === child)
        this.onExit(signal !== null ? `was killed by ${signal}` : `exited with code ${code ?? '?'}`);
    });
    this.write({ op: 'start', ...this.o.start });
    return child;
  }

  private write(m: unknown): void {
    this.child?.stdin?.write(encode(m) + '\n');
  }

  private request(method: string, args: unknown[], ctx: PluginContext): Promise<unknown> {
    if (ctx.signal.aborted) return Promise.reject(ctx.signal.reason as Error);
    this.ensure();
    const id = ++this.seq;
    // Each bus read of the child costs two more trips through the pipes (a wake-up of each process
    // both ways) on top of the bus's own. The reads this method's last call made before it wrote
    // are made first, together, through the same permission-checked bus the child's own would go
    // through, and their answers travel with the call: the child takes each once instead of asking,
    // and none after its first write (a read after a write always goes to the bus). Made after the
    // call started, they are as fresh as the child's own; made before it travels, they do not
    // compete for the CPU with its wake-up.
    const prefetch = this.learned.get(method) ?? [];
    const result = new Promise((resolve, reject) => {
      const onAbort = (): void => {
        // the call is abandoned at its deadline or on cancel: it fails with the engine's reason, and
        // its process goes with it, whatever it is doing
        const reason: unknown = ctx.signal.reason;
        this.pending.delete(id);
        reject(reason instanceof Error ? reason : new Error(String(reason)));
        this.kill(
          `its ${method} was abandoned (${reason instanceof Error ? reason.message : String(reason)})`,
        );
      };
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      const done = (): void => ctx.signal.removeEventListener('abort', onAbort);
      const pending: Pending = {
        resolve: (v) => {
          done();
          resolve(v);
        },
        reject: (e) => {
          done();
          reject(e);
        },
        ctx,
        method,
        reads: [],
        wrote: false,
        ahead: new Map(prefetch.map((r) => [readKey(r.kind, r.args), r])),
      };
      this.pending.set(id, pending);
    });
    const message = {
      op: 'call',
      id,
      method,
      args,
      ctx: { plugin: ctx.plugin, config: ctx.config, deadline: ctx.deadline, after: ctx.after },
    };
    this.stats.readAhead += prefetch.length;
    if (prefetch.length === 0) this.write(message);
    else
      void Promise.all(
        prefetch.map((r) =>
          this.busOp(ctx, r).then(
            (value) => ({ key: readKey(r.kind, r.args), ok: true, value }),
            (e: unknown) => ({ key: readKey(r.kind, r.args), ok: false, error: errorOf(e) }),
          ),
        ),
      ).then((prefetched) => {
        // abandoned meanwhile (its deadline): its child is gone already
        if (this.pending.has(id)) this.write({ ...message, prefetched });
      });
    return result;
  }

  private onMessage(line: string): void {
    const m = decode(line);
    if (m === undefined) return;
    switch (m['op']) {
      case 'result': {
        const p = this.pending.get(Number(m['id']));
        if (p === undefined) return;
        this.pending.delete(Number(m['id']));
        if (m['ok'] === true && p.method !== undefined) this.learn(p, m['took']);
        if (m['ok'] === true) p.resolve(m['value']);
        else p.reject(errorFromChild(m['error']));
        return;
      }
      case 'bus':
        void this.relay(
          Number(m['id']),
          Number(m['callId']),
          String(m['kind']),
          (m['args'] ?? []) as unknown[],
        );
        return;
      case 'progress':
        this.pending.get(Number(m['callId']))?.ctx.progress(String(m['text']).slice(0, 1000));
        return;
      case 'log': {
        const first = this.pending.values().next().value;
        const text = String(m['text']).slice(0, 1000);
        if (first !== undefined) (m['level'] === 'warn' ? first.ctx.log.warn : first.ctx.log.info)(text);
        return;
      }
      case 'load-failed':
        this.loadError = String((m['error'] as { message?: unknown } | undefined)?.message ?? 'failed');
        return;
      default:
        return;
    }
  }

  /**
   * What the next call of the method reads ahead: the reads of this one before its first write,
   * those it took from the reads made ahead (the child names them) and those it asked for.
   */
  private learn(p: Pending, took: unknown): void {
    const taken = Array.isArray(took) ? took.flatMap((k) => p.ahead?.get(String(k)) ?? []) : [];
    this.stats.taken += taken.length;
    this.learned.set(p.method ?? '', [...taken, ...(p.reads ?? [])].slice(0, PREFETCH_LIMIT));
  }

  /** A bus call of the child, made through the permission-checked bus of the call it belongs to. */
  private async relay(id: number, callId: number, kind: string, args: unknown[]): Promise<void> {
    const p = this.pending.get(callId);
    try {
      if (p === undefined) throw new Error('a bus call outside any call of the core: refused');
      this.stats.relayed++;
      const read = isRead(kind, args);
      if (!read) p.wrote = true;
      const value = await this.busOp(p.ctx, { kind, args });
      if (read && p.wrote !== true && p.reads !== undefined) p.reads.push({ kind, args });
      this.write({ op: 'bus-result', id, ok: true, value });
    } catch (e) {
      this.write({ op: 'bus-result', id, ok: false, error: errorOf(e) });
    }
  }

  /** One bus operation on a call's permission-checked bus (a relayed one, or a read made ahead). */
  private async busOp(ctx: PluginContext, { kind, args }: BusRead): Promise<unknown> {
    const bus = ctx.bus;
    if (kind === 'call') return bus.call(args[0] as Parameters<typeof bus.call>[0]);
    if (kind === 'getAll') return bus.getAll(String(args[0]), String(args[1]), String(args[2]));
    if (kind === 'reachable') return bus.reachable(String(args[0]));
    throw new Error(`no bus operation ${kind}`);
  }

  private kill(reason: string): void {
    const child = this.child;
    if (child === undefined) return;
    this.killedBecause ??= reason;
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  }

  private onExit(how: string): void {
    const why =
      this.killedBecause !== undefined
        ? `was killed: ${this.killedBecause}`
        : this.loadError !== undefined
          ? `could not load: ${this.loadError}`
          : how;
    const tail = this.outputTail.trim().split('\n').slice(-3).join(' | ').slice(-300);
    const error = new Error(
      `its isolated process ${why}${tail !== '' && this.killedBecause === undefined ? `; its last output: ${tail}` : ''}`,
    );
    this.child = undefined;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(error);
    }
  }
}

/** An error the child reported: an OpError again when it was one (a refused bus call keeps its where). */
function errorFromChild(raw: unknown): Error {
  const e = (typeof raw === 'object' && raw !== null ? raw : {}) as {
    message?: unknown;
    code?: unknown;
    where?: unknown;
  };
  const message = String(e.message ?? 'failed');
  const code = ErrorCode.safeParse(e.code);
  if (code.success && typeof e.where === 'object' && e.where !== null)
    return new OpError(code.data, message, e.where as ConstructorParameters<typeof OpError>[2]);
  return new Error(message);
}
