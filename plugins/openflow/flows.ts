import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Action, StructuredFlow } from './model.js';

// Flows as OVS's text: rendering the document's flows, OVS's canonical form (ovs-ofctl parse-flows
// for the desired side, dump-flows for the switch's side, both brought to one form here), and the
// transport: `ovs-ofctl -O OpenFlow14 --bundle add-flows` with a flow file, one atomic bundle per
// change. The tool is given every file and argument as an array, never a shell string.

const PROTOCOL = 'OpenFlow14';
/** Port names ovs-ofctl accepts as they are. */
const RESERVED_PORTS = new Set([
  'LOCAL',
  'IN_PORT',
  'CONTROLLER',
  'ALL',
  'FLOOD',
  'NORMAL',
  'ANY',
  'NONE',
  'TABLE',
]);

/**
 * Resolves a port name of the bridge to its OpenFlow number; undefined when the bridge has no such
 * port; a string is written as it is (a port that does not exist yet, shown by name in a plan).
 */
export type PortResolver = (name: string) => number | string | undefined;

export class FlowError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlowError';
  }
}

function port(p: string | number, resolve: PortResolver): string {
  if (typeof p === 'number') return String(p);
  if (RESERVED_PORTS.has(p.toUpperCase())) return p.toUpperCase();
  if (/^\d+$/.test(p)) return p;
  const n = resolve(p);
  if (n === undefined) throw new FlowError(`port ${p} is not on the bridge`);
  return String(n);
}

function action(a: Action, resolve: PortResolver): string {
  switch (a.type) {
    case 'drop':
      return 'drop';
    case 'normal':
      return 'NORMAL';
    case 'flood':
      return 'FLOOD';
    case 'output':
      return `output:${port(a.port, resolve)}`;
    case 'controller':
      return a.max_len === undefined ? 'CONTROLLER' : `controller(max_len=${a.max_len})`;
    case 'resubmit':
      return `resubmit(${a.port === undefined ? '' : port(a.port, resolve)},${a.table ?? ''})`;
    case 'goto_table':
      return `goto_table:${a.table}`;
    case 'load_register':
      return `load:${String(a.value)}->NXM_NX_REG${a.register}[]`;
    case 'set_field':
      return `set_field:${String(a.value)}->${a.field}`;
    case 'mod_vlan_vid':
      return `mod_vlan_vid:${a.vlan}`;
    case 'strip_vlan':
      return 'strip_vlan';
    case 'push_vlan':
      return `push_vlan:0x${(a.ethertype ?? 0x8100).toString(16)}`;
    case 'group':
      return `group:${a.group_id}`;
    case 'ct':
      return a.args === undefined ? 'ct' : `ct(${a.args})`;
    case 'raw':
      return a.action;
  }
}

/** A structured flow as ovs-ofctl's flow syntax (no cookie): port names resolved to numbers. */
export function renderFlow(f: StructuredFlow, resolve: PortResolver): string {
  const parts: string[] = [`table=${f.table ?? 0}`, `priority=${f.priority ?? 32768}`];
  for (const [field, v] of Object.entries(f.match_fields ?? {})) {
    if (v === true) parts.push(field);
    else if (field === 'in_port') parts.push(`in_port=${port(v, resolve)}`);
    else parts.push(`${field}=${String(v)}`);
  }
  if (f.idle_timeout !== undefined && f.idle_timeout > 0) parts.push(`idle_timeout=${f.idle_timeout}`);
  if (f.hard_timeout !== undefined && f.hard_timeout > 0) parts.push(`hard_timeout=${f.hard_timeout}`);
  const actions = f.actions.length === 0 ? 'drop' : f.actions.map((a) => action(a, resolve)).join(',');
  return `${parts.join(',')},actions=${actions}`;
}

/** Port names in a raw flow's in_port and output actions, resolved to numbers. */
export function resolveRaw(flow: string, resolve: PortResolver): string {
  return flow
    .replace(
      /\bin_port=([A-Za-z_][A-Za-z0-9_.:@-]*)/g,
      (_m, name: string) => `in_port=${port(name, resolve)}`,
    )
    .replace(/\boutput:([A-Za-z_][A-Za-z0-9_.:@-]*)/g, (_m, name: string) => `output:${port(name, resolve)}`);
}

/**
 * The canonical form both sides are compared in, itself valid ovs-ofctl flow syntax:
 * `table=T,<match with priority as OVS prints it>[,idle_timeout=I][,hard_timeout=H],actions=<as OVS prints them>`.
 */
export interface CanonicalFlow {
  /** The canonical text (the identity of a flow in a diff). */
  text: string;
  /** `table=T,<match>`: what a strict delete names. */
  match: string;
}

function canonical(table: number, match: string, idle: number, hard: number, actions: string): CanonicalFlow {
  const m = match === '' ? `table=${table}` : `table=${table},${match}`;
  const t = `${idle > 0 ? `,idle_timeout=${idle}` : ''}${hard > 0 ? `,hard_timeout=${hard}` : ''}`;
  return { text: `${m}${t},actions=${actions}`, match: m };
}

/** A canonical text back into its parts (what query returned is already canonical). */
export function fromCanonical(text: string): CanonicalFlow {
  const end = /,(idle_timeout|hard_timeout|actions)=/.exec(text);
  return { text, match: end === null ? text : text.slice(0, end.index) };
}

/** One line of `parse-flows` output ("OFPT_FLOW_MOD (OF1.4) (xid=0x1): ADD table:1 priority=0 idle:30 actions=drop"). */
export function fromParseFlows(line: string): CanonicalFlow {
  const body = line.replace(/^.*?: ADD /, '');
  const cut = body.indexOf('actions=');
  if (cut < 0) throw new FlowError(`unexpected parse-flows line: ${line}`);
  const actions = body.slice(cut + 'actions='.length).trim();
  let table = 0;
  let idle = 0;
  let hard = 0;
  let match = '';
  for (const token of body.slice(0, cut).trim().split(' ')) {
    if (token === '') continue;
    const [k, v] = splitOnce(token, ':');
    if (k === 'table' && v !== undefined) table = Number(v);
    else if (k === 'idle' && v !== undefined) idle = Number(v);
    else if (k === 'hard' && v !== undefined) hard = Number(v);
    else if (
      /^(cookie|importance|buf|out_port|out_group|flags)$/.test(k) ||
      /^(send_flow_rem|check_overlap|reset_counts|no_packet_counts|no_byte_counts)$/.test(token)
    )
      continue;
    else match = match === '' ? token : `${match},${token}`;
  }
  return canonical(table, match, idle, hard, actions);
}

/** One line of `dump-flows --no-stats --no-names` (" cookie=0x5, table=1, idle_timeout=30, priority=0 actions=drop"). */
export function fromDumpFlows(line: string): CanonicalFlow & { cookie: bigint } {
  const text = line.trim();
  const cut = text.indexOf('actions=');
  if (cut < 0) throw new FlowError(`unexpected dump-flows line: ${line}`);
  const actions = text.slice(cut + 'actions='.length).trim();
  let table = 0;
  let idle = 0;
  let hard = 0;
  let cookie = 0n;
  let match = '';
  for (const token of text.slice(0, cut).trim().split(', ')) {
    const t = token.replace(/,$/, '').trim();
    if (t === '') continue;
    const [k, v] = splitOnce(t, '=');
    if (k === 'cookie' && v !== undefined) cookie = BigInt(v);
    else if (k === 'table' && v !== undefined) table = Number(v);
    else if (k === 'idle_timeout' && v !== undefined) idle = Number(v);
    else if (k === 'hard_timeout' && v !== undefined) hard = Number(v);
    else if (/^(duration|n_packets|n_bytes|idle_age|hard_age|importance|reset_counts|send_flow_rem)$/.test(k))
      continue;
    else match = match === '' ? t : `${match},${t}`;
  }
  return { ...canonical(table, match, idle, hard, actions), cookie };
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

/** Runs ovs-ofctl; rejects with its own message (the switch's error names the flow it refused). */
export function ofctl(args: readonly string[], signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'ovs-ofctl',
      [...args],
      { encoding: 'utf8', timeout: 60_000, maxBuffer: 256 * 1024 * 1024, ...(signal ? { signal } : {}) },
      (error, stdout, stderr) => {
        if (error === null) resolve(stdout);
        else
          reject(
            new FlowError(
              `ovs-ofctl ${args[0] === '-O' ? args.slice(2, 4).join(' ') : args[0]}: ${stderr.trim() || error.message}`,
            ),
          );
      },
    );
  });
}

async function withFile<T>(text: string, fn: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'opdbus-openflow-'));
  try {
    const file = join(dir, 'flows');
    await writeFile(file, text, { mode: 0o600 });
    return await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Parsed flows are the same for the same text: kept between plans (bounded). */
const canonicalCache = new Map<string, CanonicalFlow>();
const CACHE_LIMIT = 200_000;

/**
 * Each flow text in OVS's canonical form, through `ovs-ofctl parse-flows` (offline: it needs no
 * switch). A flow it refuses throws a FlowError naming the flow's index in texts.
 */
export async function canonicalise(texts: readonly string[]): Promise<CanonicalFlow[]> {
  const missing = [...new Set(texts.filter((t) => !canonicalCache.has(t)))];
  if (missing.length > 0) {
    const out = await withFile(missing.join('\n') + '\n', (file) =>
      ofctl(['-O', PROTOCOL, 'parse-flows', file]).catch((e: unknown) => {
        const m = /:(\d+): (.*)$/m.exec(e instanceof Error ? e.message : String(e));
        const line = m?.[1] === undefined ? undefined : Number(m[1]);
        const bad = line === undefined ? undefined : missing[line - 1];
        throw new FlowError(bad === undefined ? String(e) : `ovs-ofctl refuses "${bad}": ${m?.[2] ?? ''}`);
      }),
    );
    const lines = out.split('\n').filter((l) => l.startsWith('OFPT_FLOW_MOD'));
    if (lines.length !== missing.length) {
      throw new FlowError(`parse-flows printed ${lines.length} flows for ${missing.length}`);
    }
    if (canonicalCache.size + missing.length > CACHE_LIMIT) canonicalCache.clear();
    missing.forEach((t, i) => canonicalCache.set(t, fromParseFlows(lines[i] ?? '')));
  }
  return texts.map((t) => canonicalCache.get(t) as CanonicalFlow);
}

/** The OpenFlow target of a bridge: its management socket in OVS's run directory. */
export const bridgeTarget = (rundir: string, bridge: string): string =>
  `unix:${join(rundir, `${bridge}.mgmt`)}`;

const cookieArg = (cookie: bigint): string => `0x${cookie.toString(16)}`;

/** The flows of one cookie on a bridge, canonical. */
export async function dumpOwned(
  target: string,
  cookie: bigint,
  signal?: AbortSignal,
): Promise<CanonicalFlow[]> {
  const out = await ofctl(
    ['-O', PROTOCOL, '--no-names', 'dump-flows', '--no-stats', target, `cookie=${cookieArg(cookie)}/-1`],
    signal,
  );
  return out
    .split('\n')
    .filter((l) => l.includes('actions='))
    .map((l) => fromDumpFlows(l))
    .map(({ text, match }) => ({ text, match }));
}

/**
 * One atomic bundle on the switch: strict deletes of our flows that go, adds of those that come
 * (each with our cookie). With `replaceAll`, first every flow of our cookie is deleted instead
 * (a rollback). Any flow the switch refuses fails the whole bundle, leaving the table unchanged.
 */
export async function commitBundle(
  target: string,
  cookie: bigint,
  change: { remove: readonly CanonicalFlow[]; add: readonly string[]; replaceAll?: boolean },
  signal?: AbortSignal,
): Promise<void> {
  const c = cookieArg(cookie);
  const lines: string[] = [];
  if (change.replaceAll === true) lines.push(`delete cookie=${c}/-1`);
  else for (const f of change.remove) lines.push(`delete_strict cookie=${c}/-1,${f.match}`);
  for (const f of change.add) lines.push(`add cookie=${c},${f}`);
  if (lines.length === 0) return;
  await withFile(lines.join('\n') + '\n', (file) =>
    ofctl(['-O', PROTOCOL, '--bundle', 'add-flows', target, file], signal),
  );
}
