import {
  checkCall,
  OpError,
  type ApplyProgress,
  type ErrorPayload,
  type MethodName,
  type RequestOf,
  type ResponseOf,
} from '../main/contract/index.js';

/** What the shell needs of the core; ManagerClient has this shape. */
export interface CoreLink {
  call<M extends MethodName>(method: M, request: RequestOf<M>): Promise<ResponseOf<M>>;
  onProgress(listener: (p: ApplyProgress) => void): Promise<() => void>;
}

export type RelayAnswer = { result: unknown } | { error: ErrorPayload };

/**
 * Validates one call from the renderer against the contract and forwards it to the core.
 * Answers are values, not thrown errors: ipcRenderer.invoke would reduce a thrown error to a string.
 */
export async function relayCall(
  core: () => Promise<CoreLink>,
  method: unknown,
  request: unknown,
): Promise<RelayAnswer> {
  const checked = checkCall(method, request);
  if ('error' in checked) return { error: checked.error };
  const name = checked.method;
  try {
    const link = await core();
    // validated against Manager1[name].request just above
    return { result: await link.call(name, checked.request as RequestOf<typeof name>) };
  } catch (e) {
    return {
      error:
        e instanceof OpError
          ? e.toPayload()
          : { code: 'Internal', message: e instanceof Error ? e.message : String(e) },
    };
  }
}
