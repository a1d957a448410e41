import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ManagerClient } from '../../main/client/dbus/manager-client.js';
import { BUS_NAME, INTERFACE_NAME, OBJECT_PATH } from '../../main/common/contract/index.js';
import { witnessDir, WitnessStore } from '../../main/common/witness/store.js';
import { corePid, restartCore, sandboxUp, sandboxWipe, type SandboxEnv } from '../../main/devhost/host.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'dist/main/op-dbus.js');
export const CORE_COMMAND = [process.execPath, CLI, 'core'];

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * A running sandbox (private bus, polkitd, hostnamed, the core) for one test file, in a temp dir of
 * its own that also holds the witness's state of every client the test runs; stop removes it all.
 */
export class TestSandbox {
  private constructor(
    readonly dir: string,
    readonly env: SandboxEnv,
  ) {}

  /** prefix: the temp dir's name (default opdbus-test-; a helper's tests use their own, e.g. opdbus-bundles-). */
  static async start(opts: { core?: boolean; prefix?: string } = {}): Promise<TestSandbox> {
    const parent = mkdtempSync(join(tmpdir(), opts.prefix ?? 'opdbus-test-'));
    chmodSync(parent, 0o755); // polkitd (its own uid) must reach the bus socket below it
    const dir = join(parent, 'sb');
    try {
      const env = await sandboxUp({ dir, ...(opts.core === false ? {} : { coreCommand: CORE_COMMAND }) });
      // clients in this test process (ManagerClient, dbus-next) find the sandbox's bus through this
      process.env['DBUS_SYSTEM_BUS_ADDRESS'] = env.DBUS_SYSTEM_BUS_ADDRESS;
      return new TestSandbox(dir, env);
    } catch (e) {
      rmSync(parent, { recursive: true, force: true });
      throw e;
    }
  }

  /** The witness's state dir of this test's clients: never the user's, whatever the caller's environment says. */
  get stateDir(): string {
    return join(this.dir, '..', 'state');
  }

  /** The CLI's environment: this sandbox's bus and variables, and the test's own witness state. */
  get childEnv(): NodeJS.ProcessEnv {
    return { ...process.env, XDG_STATE_HOME: this.stateDir, ...this.env };
  }

  /** Runs `op-dbus` as a separate process, as an admin would. */
  cli(args: string[], opts: { uid?: string; input?: string } = {}): CliResult {
    const argv =
      opts.uid !== undefined
        ? ['runuser', '-u', opts.uid, '--', process.execPath, CLI, ...args]
        : [process.execPath, CLI, ...args];
    const [cmd, ...rest] = argv as [string, ...string[]];
    const r = spawnSync(cmd, rest, {
      env: this.childEnv,
      encoding: 'utf8',
      input: opts.input ?? '',
      timeout: 60_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** Starts `op-dbus` in the background (for applies that a test interrupts). */
  cliBackground(args: string[]): ChildProcess {
    return spawn(process.execPath, [CLI, ...args], { env: this.childEnv, stdio: 'pipe' });
  }

  /** The sandbox's machine-info as hostnamed wrote it into the overlay (an independent reader). */
  machineInfo(): Record<string, string> {
    const etc = this.env['OP_DBUS_SANDBOX_HOSTNAMED_ETC'];
    if (etc === undefined) throw new Error('the sandbox exports no OP_DBUS_SANDBOX_HOSTNAMED_ETC');
    const file = join(etc, 'machine-info');
    const out: Record<string, string> = {};
    if (!existsSync(file)) return out;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line);
      if (m?.[1] !== undefined && m[2] !== undefined) out[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
    }
    return out;
  }

  /** busctl, the other independent reader (and writer, for out-of-band changes). */
  busctl(...args: string[]): string {
    const r = spawnSync('busctl', ['--system', ...args], {
      env: this.childEnv,
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (r.status !== 0) throw new Error(`busctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  }

  /**
   * A Manager1 call made with busctl, around our client (its checks and prompts): what the core does
   * with a raw D-Bus caller. The result as busctl left it (exit status, stdout, stderr).
   */
  busctlCore(method: string, request: object): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(
      'busctl',
      ['--system', 'call', BUS_NAME, OBJECT_PATH, INTERFACE_NAME, method, 's', JSON.stringify(request)],
      { env: this.childEnv, encoding: 'utf8', timeout: 60_000 },
    );
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  hostnameProperty(name: string): string {
    const out = this.busctl(
      'get-property',
      'org.freedesktop.hostname1',
      '/org/freedesktop/hostname1',
      'org.freedesktop.hostname1',
      name,
    );
    // busctl prints: s "value"
    return JSON.parse(out.replace(/^s /, '')) as string;
  }

  setHostnameOutOfBand(setter: string, value: string): void {
    this.busctl(
      'call',
      'org.freedesktop.hostname1',
      '/org/freedesktop/hostname1',
      'org.freedesktop.hostname1',
      setter,
      'sb',
      value,
      'false',
    );
  }

  async client(): Promise<ManagerClient> {
    return ManagerClient.connect();
  }

  corePid(): number | undefined {
    return corePid(this.dir);
  }

  /** Replaces the core with a fresh process (optionally with extra environment, e.g. a halt point). */
  async restartCore(extraEnv?: Record<string, string>): Promise<number> {
    return restartCore(this.dir, CORE_COMMAND, extraEnv);
  }

  get dataDir(): string {
    return this.env.OP_DBUS_DATA_DIR;
  }

  /** Stops the sandbox and removes its temp dir, the host's data and the witness's state with it. */
  async stop(): Promise<void> {
    await sandboxWipe(this.dir, new WitnessStore(witnessDir({ XDG_STATE_HOME: this.stateDir })));
    rmSync(join(this.dir, '..'), { recursive: true, force: true });
  }
}

/** Writes a desired-state document into a temp file and returns its path. */
export function writeDocument(dir: string, name: string, text: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Polls until fn returns true or the timeout passes. */
export async function waitFor(what: string, fn: () => boolean, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
