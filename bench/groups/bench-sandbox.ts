import { chmodSync, mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ManagerClient } from '../../main/client/dbus/manager-client.js';
import { connectSystemBus, type MessageBus } from '../../main/common/dbus/calls.js';
import { sandboxUp, sandboxWipe, type SandboxEnv } from '../../main/devhost/host.js';
import type { StartedGroup } from '../harness.js';

/** The compiled CLI, whose `core` subcommand runs org.opdbus.Manager1 (bench runs from dist/bench/groups/). */
export const CLI = resolve(import.meta.dirname, '../../main/op-dbus.js');

/** A development host of a bench group: its bus connection and a core client, both for the group's cases. */
export interface BenchSandbox {
  env: SandboxEnv;
  bus: MessageBus;
  client: ManagerClient;
}

/**
 * Starts a development host under /tmp/<prefix>-*, hands it to `start`, and gives the group a stop()
 * that closes both connections and wipes the host; a start that throws wipes it at once.
 */
export async function withBenchSandbox(
  prefix: string,
  start: (sb: BenchSandbox) => Promise<Omit<StartedGroup, 'stop'>>,
): Promise<StartedGroup> {
  // mkdtemp makes a 0700 directory; polkitd runs as its own user and must reach the bus socket below it.
  const parent = mkdtempSync(join(tmpdir(), `${prefix}-`));
  chmodSync(parent, 0o755);
  const dir = join(parent, 'sandbox');
  let bus: MessageBus | undefined;
  let client: ManagerClient | undefined;
  const stop = async (): Promise<void> => {
    client?.close();
    bus?.disconnect();
    await sandboxWipe(dir);
    rmdirSync(parent);
  };
  try {
    const env = await sandboxUp({ dir, coreCommand: [process.execPath, CLI, 'core'] });
    // connectSystemBus and ManagerClient find the sandbox's bus through this variable
    process.env['DBUS_SYSTEM_BUS_ADDRESS'] = env.DBUS_SYSTEM_BUS_ADDRESS;
    bus = await connectSystemBus();
    client = await ManagerClient.connect();
    return { ...(await start({ env, bus, client })), stop };
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
}
