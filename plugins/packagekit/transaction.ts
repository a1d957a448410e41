import type { PluginBus, PluginContext } from '../../main/sdk/index.js';

// One PackageKit transaction: CreateTransaction on a connection of its own (a transaction accepts
// only the connection that created it), the signals listened for before the method is called,
// then the method, then Finished. Package signals are the results; ErrorCode says why it failed.

export const PACKAGEKIT = 'org.freedesktop.PackageKit';
const TRANSACTION = 'org.freedesktop.PackageKit.Transaction';

/** Filter bits (1 << PkFilterEnum): none, installed. */
export const FILTER_NONE = 1 << 1;
export const FILTER_INSTALLED = 1 << 2;
/** PkInfoEnum values of Package signals. */
export const INFO_INSTALLED = 1;
/** PkTransactionFlagEnum: only packages from trusted sources. */
export const ONLY_TRUSTED = 1 << 1;
const EXIT_SUCCESS = 1;
/** PkErrorEnum: package-not-found. */
export const ERROR_PACKAGE_NOT_FOUND = 8;

export interface PackageSignal {
  info: number;
  id: string;
  summary: string;
}

export interface TransactionResult {
  packages: PackageSignal[];
  errors: { code: number; details: string }[];
  exit: number;
  succeeded: boolean;
}

/** Runs one transaction method to its Finished signal; progress lines go to onProgress. */
export async function transaction(
  ctx: PluginContext,
  member: string,
  signature: string,
  body: unknown[],
  onProgress?: (line: string) => void,
): Promise<TransactionResult> {
  const conn = await ctx.bus.open();
  try {
    return await run(conn, member, signature, body, ctx.signal, onProgress);
  } finally {
    conn.close();
  }
}

async function run(
  conn: PluginBus,
  member: string,
  signature: string,
  body: unknown[],
  abort: AbortSignal,
  onProgress?: (line: string) => void,
): Promise<TransactionResult> {
  const [path] = await conn.call({
    destination: PACKAGEKIT,
    path: '/org/freedesktop/PackageKit',
    interface: PACKAGEKIT,
    member: 'CreateTransaction',
  });
  if (typeof path !== 'string') throw new Error('PackageKit returned no transaction path');
  const result: TransactionResult = { packages: [], errors: [], exit: 0, succeeded: false };
  let finished: (() => void) | undefined;
  const done = new Promise<void>((resolve) => (finished = resolve));
  const on = (signalName: string, handler: (body: unknown[]) => void): Promise<() => Promise<void>> =>
    conn.listen({ sender: PACKAGEKIT, interface: TRANSACTION, member: signalName, path }, (s) =>
      handler(s.body),
    );
  const stops = [
    await on('Package', ([info, id, summary]) => {
      if (typeof info !== 'number' || typeof id !== 'string') return;
      result.packages.push({ info, id, summary: typeof summary === 'string' ? summary : '' });
    }),
    await on('ItemProgress', ([id, , percentage]) => {
      if (typeof id === 'string' && typeof percentage === 'number' && percentage <= 100)
        onProgress?.(`${id.split(';')[0] ?? id}: ${percentage}%`);
    }),
    await on('ErrorCode', ([code, details]) => {
      if (typeof code === 'number')
        result.errors.push({ code, details: typeof details === 'string' ? details : '' });
    }),
    await on('Finished', ([exit]) => {
      result.exit = typeof exit === 'number' ? exit : 0;
      finished?.();
    }),
  ];
  try {
    await conn.call({
      destination: PACKAGEKIT,
      path,
      interface: TRANSACTION,
      member,
      signature,
      body,
      timeoutMs: 60_000,
    });
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void =>
        reject(abort.reason instanceof Error ? abort.reason : new Error('cancelled'));
      abort.addEventListener('abort', onAbort, { once: true });
      void done.then(() => {
        abort.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  } finally {
    for (const stop of stops) await stop();
  }
  result.succeeded = result.exit === EXIT_SUCCESS;
  return result;
}

/** name;version;arch;data → its parts. */
export function parsePackageId(
  id: string,
): { name: string; version: string; arch: string; data: string } | undefined {
  const parts = id.split(';');
  if (parts.length !== 4) return undefined;
  const [name, version, arch, data] = parts as [string, string, string, string];
  return name === '' ? undefined : { name, version, arch, data };
}
