import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { auditMethods } from '../audit/audit-methods.js';
import type { Checkpointer } from '../audit/checkpointer.js';
import { openAudit } from '../audit/layout.js';
import type { AuditLog } from '../audit/log.js';
import { AuditSearch } from '../audit/search/audit-search.js';
import { searchEmbeds } from '../audit/search/search-embedder.js';
import { SearchIndex } from '../audit/search/search-index.js';
import { describeAuditMechanics, OpError } from '../../common/contract/index.js';
import { connectBus, connectSystemBus, type MessageBus } from '../../common/dbus/calls.js';
import { StateEngine } from '../engine/engine.js';
import type { HaltSpec } from '../engine/halt-points.js';
import { ApplyJournal } from '../engine/journal.js';
import { PluginRegistry } from '../engine/registry.js';
import { builtinPluginDir, discoverPlugins, pluginPathFromEnv } from '../plugins/discover.js';
import { bundleMethods } from '../bundles/bundle-methods.js';
import { BundleStore, bundleHaltFromEnv } from '../bundles/store.js';
import { DEFAULT_TRUSTED_KEYS_DIR, pluginConfig, type CoreConfig } from './config.js';
import { chooseAuthority, type Authority } from './authority.js';
import { DataDirLock } from './data-dir-lock.js';
import { DenialAggregator } from './denials.js';
import { collectStats, placeCore, type MetricsSource } from '../metrics/stats.js';
import { readTopology, topologyJson } from '../../common/topology/index.js';
import { PluginStateSnapshots, prepareDataDir, type StorageLayout } from '../storage/index.js';
import { startPrivateBus, type PrivateBus } from './private-bus.js';
import { Manager1Service } from './service.js';
import { EmbeddingService } from '../embed/embedding-service.js';

export interface CoreOptions {
  dataDir: string;
  /**
   * The pkexec path: serve Manager1 on a private bus in this directory for this user instead of
   * the system bus (which still carries polkit and the plugins' services), and stop when the
   * process that started the core goes away.
   */
  privateBus?: { dir: string; uid: number } | undefined;
  /** The sysfs tree the topology and placement read (tests point it at a fixture). */
  sysfsRoot?: string;
  authority?: Authority;
  haltAt?: HaltSpec | undefined;
  /** Where built-in plugins are found (default: this installation's) and the community plugin path. */
  plugins?: { builtinDir?: string; pluginPath?: string[] };
  /** The core's configuration file, read (readCoreConfig); none: the manifests' own [config]. */
  config?: CoreConfig;
  log?: (line: string) => void;
}

export interface RunningCore {
  stop(): Promise<void>;
}

/** Starts the core: audit log, journal recovery, the plugins, and org.opdbus.Manager1 on the system bus. */
export async function startCore(o: CoreOptions): Promise<RunningCore> {
  const log = o.log ?? ((line: string) => process.stderr.write(line + '\n'));
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  // a core that is stopping (e.g. the previous pkexec session's) gets a few seconds to let go
  const lock = await DataDirLock.acquireWaiting(o.dataDir, 5000);
  let storage: StorageLayout;
  try {
    // subvolumes, compression and no-CoW on BTRFS; the same directories elsewhere
    storage = prepareDataDir(o.dataDir, {
      compressionLevel: zstdLevelFromEnv(process.env['OP_DBUS_STORAGE_ZSTD_LEVEL']),
    });
  } catch (e) {
    lock.release();
    throw e;
  }
  log(`storage: ${storage.mode} on ${storage.filesystem.type}`);
  const placement = placeCore(o.sysfsRoot ?? '/sys', process.env['OP_DBUS_PLACEMENT'] !== 'off');
  log(`placement: ${placement.reason}`);
  const metricsSource: MetricsSource = {
    dataDir: o.dataDir,
    storage: { mode: storage.mode, filesystem: storage.filesystem.type },
  };
  for (const w of storage.warnings) log(`storage: ${w}`);
  let audit: AuditLog;
  let checkpointer: Checkpointer;
  try {
    ({ log: audit, checkpointer } = openAudit(o.dataDir, process.env, (e) =>
      log(`audit checkpoint: ${e instanceof Error ? e.message : String(e)}`),
    ));
  } catch (e) {
    lock.release();
    throw e;
  }
  const opened = audit;
  // Boots while the core connects to the bus, so the first plan does not wait for it.
  opened.startWriterThread();
  // Asked each time: a writer thread that stops hands its work to the core's own thread.
  metricsSource.audit = () => opened.mechanics;
  log(`audit log: ${describeAuditMechanics(opened.mechanics)}`);
  // the embedder process starts on first need: a core that never embeds never pays for it
  const embedding = new EmbeddingService({ dir: join(o.dataDir, 'cache'), log });
  metricsSource.embedding = () => embedding.stats();
  // what a model change re-embeds: every audit summary (written for people, secrets redacted)
  embedding.addTextSource(function* () {
    let beforeSeq: number | undefined;
    for (;;) {
      const page = opened.list({ limit: 500, ...(beforeSeq === undefined ? {} : { beforeSeq }) }).entries;
      for (const entry of page) yield entry.summary;
      const last = page.at(-1);
      if (last === undefined || page.length < 500) return;
      beforeSeq = last.seq;
    }
  });
  // the search index beside the chain: its own file, rebuilt from the log when missing or damaged
  let search: AuditSearch;
  try {
    const index = SearchIndex.open(join(o.dataDir, 'audit', 'search.sqlite'));
    if (index.rebuilt !== undefined) log(`audit search: ${index.rebuilt}; indexing the log from entry 0`);
    search = new AuditSearch(index, opened, log);
    const searched = search;
    // the search embeds through the embedding service: the model in use, in its unprivileged process,
    // through its cache; `model use` hands the new model's embedder over (and the index re-embeds)
    embedding.setSearchProgress(() => searched.progress());
    if (searchEmbeds(process.env)) embedding.onEmbedder((embedder) => searched.useEmbedder(embedder));
  } catch (e) {
    checkpointer.stop();
    audit.close();
    lock.release();
    throw e;
  }
  const appended = <T>(p: Promise<T>): Promise<T> =>
    p.then((e) => {
      search.notify();
      return e;
    });
  let bus: MessageBus | undefined;
  let privateBus: PrivateBus | undefined;
  let serviceBus: MessageBus | undefined;
  try {
    bus = await connectSystemBus();
    const connected = bus;
    if (o.privateBus !== undefined) {
      privateBus = await startPrivateBus(o.privateBus.dir, o.privateBus.uid);
      serviceBus = await connectBus(privateBus.address);
    }
    const authority =
      o.authority ??
      (await chooseAuthority(bus, privateBus === undefined ? 'system-bus-name' : 'unix-process'));
    log(`authorisation: ${authority.constructor.name}`);
    const config = o.config ?? { file: undefined, plugins: {} };
    // installed bundles (issue 18): one more discovery source, read again after each change
    const bundles = new BundleStore({
      root: join(o.dataDir, 'bundles'),
      mode: storage.mode,
      haltAt: bundleHaltFromEnv(process.env['OP_DBUS_TEST_BUNDLE_HALT_AT']),
      haltMarkerDir: o.dataDir,
    });
    for (const line of bundles.recover()) log(`bundles: ${line}`);
    const loaded: { isolated?: { close(): void } | undefined }[] = [];
    const discover = async (): Promise<PluginRegistry> => {
      const found = await discoverPlugins({
        builtinDir: o.plugins?.builtinDir ?? builtinPluginDir(),
        pluginPath: o.plugins?.pluginPath ?? pluginPathFromEnv(process.env['OP_DBUS_PLUGIN_PATH']),
        installed: bundles.activePluginDirs(),
        dataDir: o.dataDir,
      });
      // every registry's isolated children are closed at stop (a plan in progress keeps its own registry)
      loaded.push(...found.plugins);
      for (const record of found.plugins) {
        record.manifest.config = pluginConfig(record.manifest.config, config, record.name);
      }
      return new PluginRegistry(found.plugins, found.refused);
    };
    const registry = await discover();
    for (const name of Object.keys(config.plugins)) {
      if (!registry.names.includes(name) && !registry.blocked.some((b) => b.record.name === name))
        log(`config ${config.file ?? ''}: [plugins.${name}] names no plugin here`);
    }
    if (config.file !== undefined) log(`config: ${config.file}`);
    log(`plugins: ${registry.names.join(', ') || 'none'} (in apply order)`);
    for (const b of registry.blocked) log(`plugin ${b.record.name} blocked: ${b.reason}`);
    for (const r of registry.refused) log(`plugin directory ${r.dir} refused: ${r.reason}`);
    const engine = new StateEngine({
      registry,
      bus: () => connected,
      log,
      // group commit: entries that arrive together share one transaction; each resolves once committed
      audit: { record: (entry) => appended(audit.appendQueued(entry)) },
      journal: new ApplyJournal(o.dataDir),
      snapshots: new PluginStateSnapshots(storage),
      dataDir: o.dataDir,
      haltAt: o.haltAt,
      onProgress: (p) => service.emit('ApplyProgress', p),
    });
    // refusals are audited, repeats of one kind counted into one entry a minute (any bus user can be refused)
    const denials = new DenialAggregator(
      ({ actor, summary }) =>
        void appended(audit.appendQueued({ kind: 'auth-denied', actor, plugin: null, summary })).catch(
          (e: unknown) => log(`audit: ${e instanceof Error ? e.message : String(e)}`),
        ),
    );
    const service = new Manager1Service({
      bus: serviceBus ?? bus,
      authority,
      onDenied: (actor, method, reason) => denials.denied({ actor, method, reason }),
      // polkit sees which plugins an apply touches: a rules file can allow one and refuse another
      authorizationDetails: {
        Approve: (req) => pluginDetails(engine.pluginsOfPlan(req.planId)),
        Apply: (req) => pluginDetails(engine.pluginsOfPlan(req.planId)),
        Converge: () => pluginDetails(engine.pluginsOfLastApplied()),
      },
      handlers: {
        Query: (req, actor) => engine.query(req.plugins, actor),
        Schema: () => ({ schema: engine.registry.documentSchema() }),
        Stats: () => collectStats(metricsSource, placement),
        Topology: () => topologyJson(readTopology(o.sysfsRoot ?? '/sys')),
        Plan: (req, actor) => engine.plan(req.document, req.file, actor),
        Approve: (req, actor) => engine.approve(req.planId, req.hash, actor),
        Apply: (req, actor) => engine.apply(req.planId, req.hash, actor, req.confirmIrreversible),
        Verify: (req, actor) => engine.verify(req.document, req.file, actor),
        Cancel: (req, actor) => engine.cancel(req.planId, actor),
        Drift: (_req, actor) => engine.drift(actor),
        Converge: (req, actor) => engine.converge(actor, req.confirmIrreversible, req.dryRun),
        Plugins: (_req, actor) => engine.plugins(actor),
        PluginConfig: (req) => {
          const p = registry.get(req.plugin);
          if (p === undefined)
            throw new OpError('UnknownPlugin', `unknown plugin "${req.plugin}"`, { plugin: req.plugin });
          return { plugin: p.name, config: { ...p.manifest.config } };
        },
        Subscribe: (req, actor): Promise<unknown> => service.subscribe(actor.subject, req.signals),
        ...auditMethods(audit, checkpointer),
        Models: () => embedding.list(),
        ModelUse: (req) => embedding.use(req.model),
        ModelInfo: () => embedding.info(),
        AuditVerify: async (req) => ({
          ...(await audit.verifyOffThread(req.checkpoint)),
          search: search.verify(),
        }),
        AuditSearch: (req) => search.search(req),
        ...bundleMethods({
          store: bundles,
          trustedKeysDir: config.bundles?.trustedKeys ?? DEFAULT_TRUSTED_KEYS_DIR,
          audit: { record: (entry) => audit.appendQueued(entry) },
          reload: async () => {
            const next = await discover();
            engine.useRegistry(next);
            log(`plugins reloaded: ${next.names.join(', ') || 'none'} (in apply order)`);
          },
          notLoaded: (name) => {
            const r = engine.registry;
            const p = r.get(name);
            if (p !== undefined && bundles.owns(p.dir)) return undefined;
            const blocked = r.blocked.find((b) => b.record.name === name);
            if (blocked !== undefined) return blocked.reason;
            const refused = r.refused.find((f) => bundles.owns(f.dir) && f.dir.includes(`/${name}/`));
            return (
              refused?.reason ??
              (p !== undefined
                ? `a ${p.source} plugin ${name} from ${p.dir} is loaded instead`
                : 'not found by discovery')
            );
          },
          elsewhere: (name) => {
            const p =
              engine.registry.get(name) ??
              engine.registry.blocked.find((b) => b.record.name === name)?.record;
            return p !== undefined && !bundles.owns(p.dir) ? `${p.dir} (${p.source})` : undefined;
          },
        }),
      },
    });
    // recover before taking the name: clients reach the core only once the host is consistent
    const recovered = await engine.recover();
    if (recovered !== undefined) log(recovered);
    await service.claimName();
    const servedOn = privateBus?.address ?? process.env['DBUS_SYSTEM_BUS_ADDRESS'] ?? 'the system bus';
    if (o.privateBus !== undefined && privateBus !== undefined) {
      // the client that ran pkexec waits for this file, then connects
      writeFileSync(join(o.privateBus.dir, 'address'), `${privateBus.address}\n`, { mode: 0o644 });
    }
    log(`op-dbus core ready on ${servedOn}, data in ${o.dataDir}`);
    // entries are indexed at once; the embedder loads in the background (lexical search until it is ready)
    search.notify();
    const searchEmbedder = searchEmbeds(process.env)
      ? embedding.embedder().then(
          (embedder) =>
            log(
              `audit search: ${embedder.model.label} (${embedder.model.id.slice(0, 12)}), in the embedder process`,
            ),
          (e: unknown) =>
            log(
              `audit search: no embedder (${e instanceof Error ? e.message : String(e)}); lexical search only`,
            ),
        )
      : undefined;
    // live metrics are pushed as signals: clients listen, nobody polls the core
    const metrics = setInterval(() => {
      try {
        service.emit('Metrics', collectStats(metricsSource, placement));
      } catch (e) {
        log(`metrics: ${e instanceof Error ? e.message : String(e)}`);
      }
    }, metricsIntervalMs(process.env['OP_DBUS_METRICS_INTERVAL_MS']));
    metrics.unref();
    const pb = privateBus;
    const sb = serviceBus;
    return {
      async stop() {
        clearInterval(metrics);
        await service.release();
        denials.stop();
        sb?.disconnect();
        pb?.stop();
        connected.disconnect();
        await embedding.close();
        checkpointer.stop();
        // a search embedder still loading hands itself to the index when it is done: wait for that
        // first, so the index stops after it (and never works on a closed audit log)
        await searchEmbedder;
        await search.stop();
        for (const p of loaded) p.isolated?.close();
        audit.close();
        lock.release();
      },
    };
  } catch (e) {
    await embedding.close();
    serviceBus?.disconnect();
    privateBus?.stop();
    bus?.disconnect();
    checkpointer.stop();
    await search.stop();
    audit.close();
    lock.release();
    throw e;
  }
}

/** polkit details naming the plugins of an apply (rules read `action.lookup("org.opdbus.plugins")`). */
function pluginDetails(plugins: string[]): Record<string, string> {
  return { 'org.opdbus.plugins': plugins.join(',') };
}

/** The zstd level for the compressed parts of the data dir (OP_DBUS_STORAGE_ZSTD_LEVEL, default 3). */
function zstdLevelFromEnv(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const level = Number(value);
  if (!Number.isInteger(level)) {
    throw new OpError(
      'InvalidArgument',
      `OP_DBUS_STORAGE_ZSTD_LEVEL must be an integer 1-15, not "${value}"`,
    );
  }
  return level;
}

/** How often the Metrics signal goes out (OP_DBUS_METRICS_INTERVAL_MS, default 5 s, at least 10 ms: tests replay an hour fast). */
function metricsIntervalMs(value: string | undefined): number {
  if (value === undefined || value === '') return 5000;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 10) {
    throw new OpError(
      'InvalidArgument',
      `OP_DBUS_METRICS_INTERVAL_MS must be an integer ≥ 10, not "${value}"`,
    );
  }
  return ms;
}
