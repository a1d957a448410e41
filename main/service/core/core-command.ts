import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { haltSpecFromEnv } from '../engine/halt-points.js';
import { DEFAULT_CONFIG_FILE, readCoreConfig } from './config.js';
import { startCore } from './core.js';

/** Where the core keeps its data when neither --data-dir nor OP_DBUS_DATA_DIR says. */
export const DEFAULT_DATA_DIR = '/var/lib/op-dbus';

/** The pkexec path's log: beside the private bus once its directory exists; before, on stderr (pkexec's pipe). */
function logBesideBus(dir: string, line: string): void {
  try {
    appendFileSync(join(dir, 'core.log'), line + '\n');
  } catch {
    process.stderr.write(line + '\n');
  }
}

/** `op-dbus core`: the privileged service in the foreground. */
export function coreCommand(): Command {
  const program = new Command();
  return program
    .command('core')
    .description('run the core (org.opdbus.Manager1) on the system bus, in the foreground')
    .option('--data-dir <dir>', 'state, journal and audit log (env OP_DBUS_DATA_DIR)')
    .option(
      '--private-bus <dir>',
      'the pkexec path: serve on a private bus in DIR for the user who ran pkexec',
    )
    .option(
      '--config <file>',
      `the core's configuration (env OP_DBUS_CONFIG; default ${DEFAULT_CONFIG_FILE}, absent = defaults)`,
    )
    .option(
      '--new-audit-log',
      'begin a new audit log where the old one is missing or empty (env OP_DBUS_AUDIT_NEW_LOG=1); its first entry records it',
    )
    .action(async (o: { dataDir?: string; privateBus?: string; newAuditLog?: boolean; config?: string }) => {
      const dataDir = o.dataDir ?? process.env['OP_DBUS_DATA_DIR'] ?? DEFAULT_DATA_DIR;
      // the audit log reads this switch with the rest of its configuration (OP_DBUS_AUDIT_*, openAudit)
      if (o.newAuditLog === true) process.env['OP_DBUS_AUDIT_NEW_LOG'] = '1';
      const privateBus =
        o.privateBus === undefined
          ? undefined
          : { dir: o.privateBus, uid: Number(process.env['PKEXEC_UID'] ?? process.getuid?.() ?? 0) };
      const core = await startCore({
        dataDir,
        config: readCoreConfig(o.config ?? process.env['OP_DBUS_CONFIG']),
        privateBus,
        haltAt: haltSpecFromEnv(process.env['OP_DBUS_TEST_HALT_AT']),
        // on the pkexec path stderr is the client's pipe, which goes away with it: log beside the bus
        ...(privateBus !== undefined ? { log: (line: string) => logBesideBus(privateBus.dir, line) } : {}),
      });
      const parent = process.ppid;
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
        // on the pkexec path the core lives as long as the client that started it
        if (privateBus !== undefined) setInterval(() => process.ppid !== parent && stop(), 200).unref();
      });
      await core.stop();
    });
}
