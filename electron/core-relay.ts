import {
  checkCall,
  checkLocalCall,
  OpError,
  type ErrorPayload,
  type MethodName,
  type RequestOf,
  type ResponseOf,
  type SignalName,
  type SignalPayload,
  type InclusionReport,
  type WitnessReport,
} from '../main/common/contract/index.js';

/** What the shell needs of the core; ManagerClient has this shape. */
export interface CoreLink {
  call<M extends MethodName>(method: M, request: RequestOf<M>): Promise<ResponseOf<M>>;
  onSignal<S extends SignalName>(name: S, listener: (payload: SignalPayload<S>) => void): Promise<() => void>;
}

/** What the shell answers itself (the relay-local methods of the contract); never sent to the core. */
export interface LocalAnswers {
  witness: () => Promise<WitnessReport>;
  verifyInclusion: (seq: number) => Promise<InclusionReport>;
}

export type RelayAnswer = { result: unknown } | { error: ErrorPayload };

/**
 * Validates one call from the renderer against the contract and forwards it to the core, or
 * answers it here when it is a relay-local method (`Witness`).
 * Answers are values, not thrown errors: ipcRenderer.invoke would reduce a thrown error to a string.
 */
export async function relayCall(
  core: () => Promise<CoreLink>,
  method: unknown,
  request: unknown,
  local: LocalAnswers,
): Promise<RelayAnswer> {
  const own = checkLocalCall(method, request);
  if (own !== undefined) {
    if ('error' in own) return { error: own.error };
    if (own.method === 'VerifyInclusion') {
      return answer(() => local.verifyInclusion((own.request as { seq: number }).seq));
    }
    return answer(() => local.witness());
  }
  const checked = checkCall(method, request);
  if ('error' in checked) return { error: checked.error };
  const name = checked.method;
  // validated against Manager1[name].request just above
  return answer(async () => (await core()).call(name, checked.request as RequestOf<typeof name>));
}

async function answer(run: () => Promise<unknown>): Promise<RelayAnswer> {
  try {
    return { result: await run() };
  } catch (e) {
    return {
      error:
        e instanceof OpError
          ? e.toPayload()
          : { code: 'Internal', message: e instanceof Error ? e.message : String(e) },
    };
  }
}
