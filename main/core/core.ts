import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog } from '../audit/log.js';
import { OpError } from '../contract/index.js';
import { connectSystemBus, type MessageBus } from '../dbus/calls.js';
import { HALT_POINTS, StateEngine, type HaltPoint } from '../engine/engine.js';
import { ApplyJournal } from '../engine/journal.js';
import { PluginRegistry } from '../engine/registry.js';
import { HostnamePlugin } from '../../plugins/hostname/index.js';
import { chooseAuthority, type Authority } from './authority.js';
import { DataDirLock } from './data-dir-lock.js';
import { Manager1Service } from './service.js';

export interface CoreOptions {
  dataDir: string;
  authority?: Authority;
  haltAt?: HaltPoint | undefined;
  log?: (line: string) => void;
}

export interface RunningCore {
  stop(): Promise<void>;
}

/** Starts the core: audit log, journal recovery, the plugins, and org.opdbus.Manager1 on the system bus. */
export async function startCore(o: CoreOptions): Promise<RunningCore> {
  const log = o.log ?? ((line: string) => process.stderr.write(line + '\n'));
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const lock = DataDirLock.acquire(o.dataDir);
  let audit: AuditLog;
  try {
    audit = AuditLog.open(join(o.dataDir, 'audit.sqlite'));
  } catch (e) {
    lock.release();
    throw e;
  }
  let bus: MessageBus | undefined;
  try {
    bus = await connectSystemBus();
    const connected = bus;
    const authority = o.authority ?? (await chooseAuthority(bus));
    log(`authorisation: ${authority.constructor.name}`);
    const registry = new PluginRegistry([new HostnamePlugin(() => connected)]);
    const engine = new StateEngine({
      registry,
      audit,
      journal: new ApplyJournal(o.dataDir),
      dataDir: o.dataDir,
      haltAt: o.haltAt,
      onProgress: (p) => service.emitProgress(p),
    });
    const service = new Manager1Service({
      bus,
      authority,
      onDenied: (actor, method, reason) =>
        audit.append({ kind: 'auth-denied', actor, plugin: null, summary: `denied ${method}: ${reason}` }),
      handlers: {
        Query: (req, actor) => engine.query(req.plugins, actor),
        Schema: () => ({ schema: registry.documentSchema() }),
        Plan: (req, actor) => engine.plan(req.document, req.file, actor),
        Approve: (req, actor) => engine.approve(req.planId, req.hash, actor),
        Apply: (req, actor) => engine.apply(req.planId, req.hash, actor),
        Verify: (req, actor) => engine.verify(req.document, req.file, actor),
        AuditList: (req) => audit.list(req),
        AuditVerify: (req) => audit.verify(req.checkpoint),
      },
    });
    // recover before taking the name: clients reach the core only once the host is consistent
    const recovered = await engine.recover();
    if (recovered !== undefined) log(recovered);
    await service.claimName();
    log(
      `op-dbus core ready on ${process.env['DBUS_SYSTEM_BUS_ADDRESS'] ?? 'the system bus'}, data in ${o.dataDir}`,
    );
    return {
      async stop() {
        await service.release();
        connected.disconnect();
        audit.close();
        lock.release();
      },
    };
  } catch (e) {
    bus?.disconnect();
    audit.close();
    lock.release();
    throw e;
  }
}

/** Reads the test-only halt point from the environment, refusing unknown names. */
export function haltPointFromEnv(value: string | undefined): HaltPoint | undefined {
  if (value === undefined || value === '') return undefined;
  if ((HALT_POINTS as readonly string[]).includes(value)) return value as HaltPoint;
  throw new OpError(
    'InvalidArgument',
    `OP_DBUS_TEST_HALT_AT must be one of ${HALT_POINTS.join(', ')}, not "${value}"`,
  );
}
