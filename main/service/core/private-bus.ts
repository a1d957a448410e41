import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { OpError } from '../../common/contract/index.js';

const run = promisify(execFile);

/** A private bus for the pkexec path: only root (the core) and the user who started it can connect. */
export interface PrivateBus {
  address: string;
  pid: number;
  stop(): void;
}

/**
 * Starts a dbus-daemon on a socket in `dir` for one user. The core serves Manager1 there, with the
 * same methods and the same polkit checks as on the system bus (the subject becomes the caller's
 * process, since polkit does not know names on a private bus).
 */
export async function startPrivateBus(dir: string, uid: number): Promise<PrivateBus> {
  if (!/^\/[A-Za-z0-9._/-]+$/.test(dir) || dir.split('/').includes('..')) {
    throw new OpError(
      'InvalidArgument',
      `private bus directory must be an absolute plain path, not ${JSON.stringify(dir)}`,
    );
  }
  if (!Number.isInteger(uid) || uid < 0) throw new OpError('InvalidArgument', `not a uid: ${uid}`);
  // the directory must be new: a name someone prepared in a shared /tmp is refused, not reused
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    throw new OpError(
      'InvalidArgument',
      `cannot create the private bus directory ${dir}: ${(e as Error).message}`,
      {
        file: dir,
      },
    );
  }
  // the user must reach the socket; nobody else may enter the directory
  chownSync(dir, 0, 0);
  chmodSync(dir, 0o711);
  const socket = join(dir, 'bus');
  const config = join(dir, 'bus.conf');
  writeFileSync(
    config,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>opdbus-private</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <deny user="*"/>
    <allow user="root"/>
    <allow user="${uid}"/>
    <deny own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
  <policy user="root">
    <allow own="org.opdbus.Manager1"/>
  </policy>
</busconfig>
`,
    { mode: 0o600 },
  );
  let stdout: string;
  try {
    ({ stdout } = await run(
      'dbus-daemon',
      [`--config-file=${config}`, '--fork', '--print-pid=1', '--print-address=1'],
      {
        timeout: 10_000,
      },
    ));
  } catch (e) {
    throw new OpError(
      'Internal',
      `cannot start the private bus: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  const [addressLine, pidLine] = stdout.split('\n');
  const pid = Number.parseInt(pidLine ?? '', 10);
  const address = addressLine?.split(',')[0] ?? '';
  if (!Number.isInteger(pid) || !address.startsWith('unix:')) {
    throw new OpError('Internal', `dbus-daemon printed no address and pid: ${stdout}`);
  }
  chmodSync(socket, 0o666); // the bus policy above decides who may connect
  return {
    address,
    pid,
    stop: () => {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
