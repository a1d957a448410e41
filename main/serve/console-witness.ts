import { witnessReport, type WitnessReport } from '../contract/index.js';
import type { ManagerClient } from '../client/manager-client.js';
import { witnessCheck, witnessDir, witnessEndpoint, WitnessStore } from '../client/witness.js';

/**
 * The CLI's witness (main/client/witness.ts) for a console process: the same store in the user's
 * state dir, the same host identity, the same OP_DBUS_WITNESS=off switch; the outcome becomes a
 * report for the renderer instead of an exit code.
 */
export function consoleWitness(
  client: ManagerClient,
  env: NodeJS.ProcessEnv = process.env,
): () => Promise<WitnessReport> {
  const endpoint = witnessEndpoint(env);
  return () =>
    witnessReport(() => witnessCheck(client, new WitnessStore(witnessDir(env)), endpoint), {
      endpoint,
      off: env['OP_DBUS_WITNESS'] === 'off',
    });
}
