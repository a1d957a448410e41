import type { z } from 'zod';
import {
  Signals,
  type SignalName,
  type ApplyProgress,
  BUS_NAME,
  CONTRACT_VERSION,
  contractVersionOf,
  ERROR_NAME_PREFIX,
  ErrorPayload,
  INTERFACE_NAME,
  Manager1,
  OBJECT_PATH,
  OpError,
  type MethodName,
  type RequestOf,
  type ResponseOf,
} from '../../common/contract/index.js';
import {
  callMethod,
  connectBus,
  connectSystemBus,
  disconnectBus,
  nameReachable,
  type MessageBus,
} from '../../common/dbus/calls.js';
import { systemBusAddress } from '../../common/dbus/system-bus.js';
import { CoreSignals } from './core-signals.js';
import { CORE_LAUNCHER, startCoreWithPkexec } from './pkexec-launcher.js';

const ALLOW_INTERACTIVE_AUTHORIZATION = 0x4;
const TIMEOUTS: Partial<Record<MethodName, number>> = {
  Apply: 10 * 60_000,
  Plan: 5 * 60_000,
  Verify: 5 * 60_000,
  Drift: 5 * 60_000,
  Converge: 10 * 60_000,
};

/** A typed client of org.opdbus.Manager1: requests and responses checked against the contract. */
export class ManagerClient {
  /**
   * @param endpoint names the host this client talks to, for the witness: the system bus address,
   * or `pkexec:<launcher>` for a core this client started through pkexec on a private bus.
   */
  private signals: Promise<CoreSignals> | undefined;

  private constructor(
    private readonly bus: MessageBus,
    readonly endpoint: string,
  ) {}

  /**
   * Connects to the core on the system bus (DBUS_SYSTEM_BUS_ADDRESS when set) and checks that it
   * speaks this client's contract version. With `pkexec` (default: env OP_DBUS_PKEXEC=1), where no
   * core runs there, starts one through pkexec on a private bus: same API, same polkit checks.
   */
  static async connect(opts: { pkexec?: boolean } = {}): Promise<ManagerClient> {
    const systemBus = systemBusAddress();
    const bus = await connectSystemBus(systemBus);
    const pkexec = opts.pkexec ?? process.env['OP_DBUS_PKEXEC'] === '1';
    let client: ManagerClient;
    if (!pkexec || (await nameReachable(bus, BUS_NAME))) {
      client = new ManagerClient(bus, systemBus);
    } else {
      bus.disconnect();
      const launcher = process.env['OP_DBUS_CORE_LAUNCHER'] ?? CORE_LAUNCHER;
      client = new ManagerClient(await connectBus(await startCoreWithPkexec(launcher)), `pkexec:${launcher}`);
    }
    try {
      await client.checkContractVersion();
    } catch (e) {
      client.close();
      throw e;
    }
    return client;
  }

  /**
   * Asks the core for its introspection XML (no polkit check, no audit entry) and refuses a core of
   * another contract version: its payloads would be misread, or fail later with a less telling error.
   */
  private async checkContractVersion(): Promise<void> {
    let xml: unknown;
    try {
      [xml] = await callMethod(this.bus, {
        destination: BUS_NAME,
        path: OBJECT_PATH,
        interface: 'org.freedesktop.DBus.Introspectable',
        member: 'Introspect',
      });
    } catch (e) {
      throw toOpError(e, this.endpoint);
    }
    const version = contractVersionOf(typeof xml === 'string' ? xml : '');
    if (version === CONTRACT_VERSION) return;
    const theirs =
      version === undefined
        ? 'declares no contract version (it is older than the version marker)'
        : `speaks contract version ${version}`;
    throw new OpError(
      'DBusCallFailed',
      `the core on ${this.endpoint} ${theirs}, this op-dbus speaks version ${CONTRACT_VERSION}: use the op-dbus client of the core's build, or restart the core from this one`,
      { dbus: { service: BUS_NAME, path: OBJECT_PATH } },
      { coreContractVersion: version ?? null, clientContractVersion: CONTRACT_VERSION },
    );
  }

  /**
   * Calls a Manager1 method. `interactive` lets polkit ask the user for a password through an
   * authentication agent (set it only when someone can answer); `client` labels the session behind the
   * call in its audit entry (a relay such as `serve` names its console session).
   */
  async call<M extends MethodName>(
    method: M,
    request: RequestOf<M>,
    opts: { interactive?: boolean; client?: string } = {},
  ): Promise<ResponseOf<M>> {
    let body: unknown[];
    try {
      body = await callMethod(this.bus, {
        destination: BUS_NAME,
        path: OBJECT_PATH,
        interface: INTERFACE_NAME,
        member: method,
        signature: 's',
        // the label the core records beside the caller's uid (ClientLabel in the contract)
        body: [JSON.stringify(opts.client === undefined ? request : { ...request, client: opts.client })],
        timeoutMs: (TIMEOUTS[method] ?? 60_000) + (opts.interactive === true ? 5 * 60_000 : 0),
        flags: opts.interactive === true ? ALLOW_INTERACTIVE_AUTHORIZATION : 0,
      });
    } catch (e) {
      throw toOpError(e, this.endpoint);
    }
    const text = body[0];
    if (typeof text !== 'string')
      throw new OpError('Internal', `${method}: the core answered without a JSON string`);
    const parsed = Manager1[method].response.safeParse(JSON.parse(text));
    if (!parsed.success) {
      throw new OpError(
        'Internal',
        `${method}: the core's answer does not match the contract: ${parsed.error.message}`,
      );
    }
    return parsed.data as ResponseOf<M>;
  }

  /** Calls `listener` for each ApplyProgress signal until the returned function is called. */
  onProgress(listener: (p: ApplyProgress) => void): Promise<() => void> {
    return this.onSignal('ApplyProgress', listener);
  }

  /**
   * Calls `listener` with each signal of this name from the core, checked against the contract, until the
   * returned function is called. Asks the core for it (Subscribe, polkit action read); only signals from
   * the current owner of the core's name are accepted (CoreSignals).
   */
  async onSignal<S extends SignalName>(
    name: S,
    listener: (payload: z.output<(typeof Signals)[S]>) => void,
  ): Promise<() => void> {
    this.signals ??= CoreSignals.watch(this.bus, (signals) => this.call('Subscribe', { signals }));
    return (await this.signals).listen(name, listener);
  }

  close(): void {
    void this.signals?.then((s) => s.close());
    disconnectBus(this.bus);
  }
}

/** Our typed errors come back as D-Bus errors whose text is the JSON payload; others are named as they are. */
function toOpError(e: unknown, endpoint: string): OpError {
  if (!(e instanceof OpError)) return new OpError('Internal', e instanceof Error ? e.message : String(e));
  const details = e.details as { errorName?: string; text?: string } | undefined;
  const name = details?.errorName ?? '';
  if (name.startsWith(ERROR_NAME_PREFIX)) {
    try {
      const payload = ErrorPayload.safeParse(JSON.parse(details?.text ?? ''));
      if (payload.success) return OpError.fromPayload(payload.data);
    } catch {
      // fall through: not our payload after all
    }
  }
  if (
    name === 'org.freedesktop.DBus.Error.ServiceUnknown' ||
    name === 'org.freedesktop.DBus.Error.NameHasNoOwner'
  ) {
    return new OpError(
      'DBusCallFailed',
      `the operation-dbus core (${BUS_NAME}) is not running on the bus at ${endpoint}: start it (the op-dbus service, or OP_DBUS_PKEXEC=1 to start one through pkexec), or run \`eval "$(op-dbus sandbox up)"\` for a development host`,
      e.where,
    );
  }
  return e;
}
