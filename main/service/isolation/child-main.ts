import { Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import type { BusCall, PluginContext, PluginModule, StatePlugin } from '../../sdk/index.js';
import { generatedPlugin } from '../generated/runtime.js';
import type { GeneratedSpec } from '../../common/generated/spec.js';
import { decode, encode, errorOf, isRead, LineReader, readKey } from './wire.js';

// The process an isolated plugin runs in (inside bubblewrap, as an unprivileged user, no network,
// no bus): it reads calls on stdin, answers on fd 3, and reaches the bus only by asking the core,
// which checks each call against the plugin's permissions and makes it with its own connection.

// libuv streams, not fs streams: a blocking read or write in the thread pool would hold process.exit
const out = new Socket({ fd: 3, readable: false, writable: true });
const send = (m: unknown): void => void out.write(encode(m) + '\n');

interface Start {
  kind: 'community' | 'generated';
  entry?: string;
  spec?: GeneratedSpec;
}

let started: (s: Start) => void = () => undefined;
const start = new Promise<Start>((resolve) => (started = resolve));
let busSeq = 0;
const pendingBus = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
const aborts = new Map<number, AbortController>();
/** A read the core made for a call before it sent it (isolated-plugin.ts), its answer. */
interface Prefetched {
  ok: boolean;
  value?: unknown;
  error?: unknown;
  /** Given to a read of the plugin, or void since it wrote: never given out (again). */
  taken: boolean;
  /** Given to a read of the plugin (before it wrote). */
  used: boolean;
}
/** Per call, the reads the core made ahead for it, by their keys (readKey), each taken once. */
const prefetched = new Map<number, Map<string, Prefetched>>();

async function load(): Promise<StatePlugin> {
  const s = await start;
  if (s.kind === 'generated' && s.spec !== undefined) return generatedPlugin(s.spec);
  const loaded = (await import(pathToFileURL(s.entry ?? '').href)) as { default?: unknown };
  const mod = (loaded.default ?? loaded) as PluginModule;
  if (typeof mod !== 'object' || mod === null || !('plugin' in mod))
    throw new Error(`${s.entry ?? ''} has no default export { plugin, schema? }`);
  exported = mod;
  return mod.plugin;
}

function bus(callId: number, kind: 'call' | 'getAll' | 'reachable', args: unknown[]): Promise<unknown> {
  const ahead = prefetched.get(callId);
  if (ahead !== undefined) {
    if (!isRead(kind, args)) {
      // after a write every read goes to the bus: what was read ahead may be what it just changed
      for (const d of ahead.values()) d.taken = true;
    } else {
      const d = ahead.get(readKey(kind, args));
      if (d !== undefined && !d.taken) {
        d.taken = true;
        d.used = true;
        return d.ok ? Promise.resolve(d.value) : Promise.reject(busError(d.error));
      }
    }
  }
  const id = ++busSeq;
  return new Promise((resolve, reject) => {
    pendingBus.set(id, { resolve, reject });
    send({ op: 'bus', id, callId, kind, args });
  });
}

/** The error of a refused or failed bus operation, as the core sent it. */
function busError(raw: unknown): Error {
  const e = (raw ?? {}) as { message?: unknown; code?: unknown; where?: unknown };
  return Object.assign(new Error(String(e.message ?? 'refused')), { code: e.code, where: e.where });
}

let exported: PluginModule | undefined;
const plugin = load();

/** What the core checks before it lists the plugin: the methods it has, and the schema it exports. */
async function describe(id: number): Promise<void> {
  try {
    const p = (await plugin) as unknown as Record<string, unknown> | undefined;
    const methods = Object.keys(p ?? {}).filter((k) => typeof p?.[k] === 'function');
    for (const k of ['available', 'query', 'diff', 'checkpoint', 'apply', 'verify', 'rollback'])
      if (typeof p?.[k] === 'function' && !methods.includes(k)) methods.push(k);
    send({ op: 'result', id, ok: true, value: { methods, schema: exported?.schema ?? null } });
  } catch (e) {
    send({ op: 'result', id, ok: false, error: errorOf(e) });
  }
}

function contextOf(callId: number, c: Record<string, unknown>): PluginContext {
  const controller = new AbortController();
  aborts.set(callId, controller);
  return {
    plugin: String(c['plugin']),
    config: Object.freeze((c['config'] ?? {}) as Record<string, unknown>),
    bus: {
      call: (call: BusCall) => bus(callId, 'call', [call]) as Promise<unknown[]>,
      getAll: (d, p, i) => bus(callId, 'getAll', [d, p, i]) as Promise<Record<string, unknown>>,
      reachable: (n) => bus(callId, 'reachable', [n]) as Promise<boolean>,
      // signals and connections of its own need a bus socket, which an isolated plugin never gets
      listen: () => Promise.reject(new Error('an isolated plugin cannot subscribe to bus signals')),
      open: () => Promise.reject(new Error('an isolated plugin cannot open a bus connection of its own')),
    },
    signal: controller.signal,
    deadline: Number(c['deadline']),
    after: Object.freeze((c['after'] ?? {}) as PluginContext['after']),
    log: {
      info: (text) => send({ op: 'log', level: 'info', text: String(text) }),
      warn: (text) => send({ op: 'log', level: 'warn', text: String(text) }),
    },
    progress: (text) => send({ op: 'progress', callId, text: String(text) }),
  };
}

async function run(id: number, method: string, args: unknown[], ctx: Record<string, unknown>): Promise<void> {
  try {
    const p = (await plugin) as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const fn = p[method];
    if (typeof fn !== 'function') throw new Error(`the plugin has no method ${method}`);
    const value = await fn.call(p, ...args, contextOf(id, ctx));
    const took = [...(prefetched.get(id) ?? [])].flatMap(([k, d]) => (d.used ? [k] : []));
    send({ op: 'result', id, ok: true, value: value ?? null, ...(took.length > 0 ? { took } : {}) });
  } catch (e) {
    send({ op: 'result', id, ok: false, error: errorOf(e) });
  } finally {
    aborts.delete(id);
    prefetched.delete(id);
  }
}

const reader = new LineReader(
  (line) => {
    const m = decode(line);
    if (m === undefined) return;
    if (m['op'] === 'start') started(m as unknown as Start);
    else if (m['op'] === 'describe') void describe(Number(m['id']));
    else if (m['op'] === 'call') {
      const ahead = m['prefetched'];
      if (Array.isArray(ahead) && ahead.length > 0)
        prefetched.set(
          Number(m['id']),
          new Map(
            (ahead as { key?: unknown; ok?: unknown; value?: unknown; error?: unknown }[]).map((a) => [
              String(a.key),
              { ok: a.ok === true, value: a.value, error: a.error, taken: false, used: false },
            ]),
          ),
        );
      void run(
        Number(m['id']),
        String(m['method']),
        (m['args'] ?? []) as unknown[],
        (m['ctx'] ?? {}) as Record<string, unknown>,
      );
    } else if (m['op'] === 'abort')
      aborts.get(Number(m['id']))?.abort(new Error(String(m['reason'] ?? 'aborted')));
    else if (m['op'] === 'bus-result') {
      const p = pendingBus.get(Number(m['id']));
      pendingBus.delete(Number(m['id']));
      if (m['ok'] === true) p?.resolve(m['value']);
      else p?.reject(busError(m['error']));
    }
  },
  () => process.exit(3),
);
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => reader.push(String(chunk)));
process.stdin.on('end', () => process.exit(0));
plugin.then(
  () => send({ op: 'ready' }),
  (e: unknown) => {
    send({ op: 'load-failed', error: errorOf(e) });
    process.exit(4);
  },
);
