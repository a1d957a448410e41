import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { connectSystemBus, type MessageBus } from '../../main/common/dbus/calls.js';
import { generatePlugin, type GeneratedPlugin } from '../../main/common/generated/generate.js';
import { permissionsOf } from '../../main/common/generated/spec.js';
import { sandboxUp, sandboxWipe } from '../../main/devhost/host.js';
import type { PluginContext, SectionDiff, StatePlugin } from '../../main/sdk/index.js';
import { generatedPlugin } from '../../main/service/generated/runtime.js';
import { IsolatedPlugin } from '../../main/service/isolation/isolated-plugin.js';
import { PermissionedBus } from '../../main/service/plugins/bus-facade.js';
import type { BenchCase, BenchGroup, StartedGroup } from '../harness.js';
import { median } from '../statistics.js';

// Generation from introspection XML over the whole fixture corpus, and what isolation costs: the
// same generated plugin (locale1 with its shipped mapping, against the real systemd-localed of a
// development host) queried and applied in the bench's process and in its bubblewrap child.

const ROOT = resolve(import.meta.dirname, '../../..');
const CORPUS = resolve(ROOT, '../shared/fixtures/dbus-introspection');
const PLUGIN_DIR = join(ROOT, 'plugins/generated/locale1');
/** apply flips between these, so every apply really changes localed's file. */
const LOCALES = [['LANG=C.UTF-8'], ['LANG=C']] as const;

export const generatedGroup: BenchGroup = {
  name: 'generated',
  description:
    'Plugin generation from introspection XML (the 203 fixture files), and a generated plugin (locale1 + its mapping, ' +
    "real systemd-localed on a development host bus) queried and applied in process and out of process (bubblewrap, nobody, the core's relay).",
  baseline: 'query-in-process',
  start: startGenerated,
};

function xmlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? xmlFiles(join(dir, d.name)) : d.name.endsWith('.xml') ? [join(dir, d.name)] : [],
  );
}

/** Each corpus file generated a few times: the median per file, and the spread over files. */
function corpusNotes(): string[] {
  const perFile: { file: string; ms: number }[] = [];
  let refused = 0;
  for (const file of xmlFiles(CORPUS)) {
    const xml = readFileSync(file, 'utf8');
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = process.hrtime.bigint();
      const r = generatePlugin({ xml, file });
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (i === 0 && !r.ok) refused++;
    }
    perFile.push({ file: relative(CORPUS, file), ms: median(times) });
  }
  const sorted = [...perFile].sort((a, b) => a.ms - b.ms);
  const at = (q: number): number =>
    (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as { ms: number }).ms;
  const worst = sorted[sorted.length - 1] as { file: string; ms: number };
  const total = perFile.reduce((n, f) => n + f.ms, 0);
  return [
    `generation over ${perFile.length} fixture files (${refused} refused as malformed), median of 5 per file: median ${at(0.5).toFixed(3)} ms, p90 ${at(0.9).toFixed(3)} ms, max ${worst.ms.toFixed(3)} ms (${worst.file}), all files ${total.toFixed(1)} ms`,
  ];
}

async function startGenerated(): Promise<StartedGroup> {
  const parent = mkdtempSync(join(tmpdir(), 'opdbus-bench-generated-'));
  chmodSync(parent, 0o755);
  const dir = join(parent, 'sandbox');
  let bus: MessageBus | undefined;
  let isolated: IsolatedPlugin | undefined;
  const stop = async (): Promise<void> => {
    isolated?.close();
    bus?.disconnect();
    await sandboxWipe(dir);
    rmSync(parent, { recursive: true, force: true });
  };
  try {
    const notes = corpusNotes();
    const env = await sandboxUp({ dir });
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = env.DBUS_SYSTEM_BUS_ADDRESS;
    const connection = await connectSystemBus();
    bus = connection;
    const r = generatePlugin({
      xml: readFileSync(join(PLUGIN_DIR, 'introspection.xml'), 'utf8'),
      file: join(PLUGIN_DIR, 'introspection.xml'),
      mapping: {
        text: readFileSync(join(PLUGIN_DIR, 'semantic-mapping.toml'), 'utf8'),
        file: join(PLUGIN_DIR, 'semantic-mapping.toml'),
      },
    });
    if (!r.ok) throw new Error(r.error.message);
    const g: GeneratedPlugin = r.plugin;
    isolated = new IsolatedPlugin({
      name: g.name,
      start: { kind: 'generated', spec: g.spec },
      readable: [],
      stateDir: join(parent, 'plugin-state', g.name),
      hidden: [],
    });
    const permissions = permissionsOf(g.spec);
    const ctx = (): PluginContext => ({
      plugin: g.name,
      config: {},
      bus: new PermissionedBus(
        g.name,
        permissions,
        () => connection,
        (refused) => {
          throw new Error(`refused: ${refused.reason}`);
        },
      ),
      signal: new AbortController().signal,
      deadline: Date.now() + 30_000,
      after: {},
      log: { info: () => undefined, warn: () => undefined },
      progress: () => undefined,
    });
    const inProcess = generatedPlugin(g.spec);
    const outOfProcess = isolated.impl;
    const cold = process.hrtime.bigint();
    await outOfProcess.query(ctx());
    notes.push(
      `first out-of-process call (bwrap + node start of the child): ${(Number(process.hrtime.bigint() - cold) / 1e6).toFixed(1)} ms`,
    );
    const child = isolated;
    const notesAfter = (): Promise<string[]> =>
      Promise.resolve([
        `out-of-process bus operations: ${child.stats.relayed} relayed when the child asked, ${child.stats.readAhead} read ahead by the core with the call, ${child.stats.taken} of those taken by the child`,
      ]);
    return { cases: cases(g, inProcess, outOfProcess, ctx), notes, notesAfter, stop };
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}

function cases(
  g: GeneratedPlugin,
  inProcess: StatePlugin,
  outOfProcess: StatePlugin,
  ctx: () => PluginContext,
): BenchCase[] {
  let flip = 0;
  const apply = async (p: StatePlugin): Promise<void> => {
    const value = LOCALES[flip++ % 2] as readonly string[];
    const diff: SectionDiff = {
      resources: [
        { id: 'locale', action: 'modify', changes: [{ path: '/plugins/locale1/locale', after: [...value] }] },
      ],
    };
    const r = await p.apply(diff, { locale: [...value] }, ctx());
    if (r.changed !== 1) throw new Error(`apply changed ${r.changed}`);
  };
  const query = async (p: StatePlugin): Promise<void> => {
    const s = (await p.query(ctx())) as { locale?: unknown };
    if (!Array.isArray(s.locale)) throw new Error('no locale in the state');
  };
  const xml = readFileSync(join(PLUGIN_DIR, 'introspection.xml'), 'utf8');
  return [
    { name: 'query-in-process', run: () => query(inProcess) },
    { name: 'query-out-of-process', run: () => query(outOfProcess) },
    { name: 'apply-in-process', run: () => apply(inProcess) },
    { name: 'apply-out-of-process', run: () => apply(outOfProcess) },
    {
      name: `generate-${g.name}`,
      run: () => {
        const r = generatePlugin({ xml, file: 'introspection.xml' });
        return r.ok ? Promise.resolve() : Promise.reject(new Error(r.error.message));
      },
    },
  ];
}
