/**
 * The shell's IPC channels and the signal names it forwards. preload.cts repeats these (a
 * sandboxed preload cannot require project files); ipc-channels.test.ts keeps the two in step
 * and the signal names in step with the contract's `Signals`.
 */
export const CALL_CHANNEL = 'opdbus:call';
/** Main → console: `(name, payload)` for each signal of the core, name one of SIGNAL_NAMES. */
export const SIGNAL_CHANNEL = 'opdbus:signal';
export const SIGNAL_NAMES = ['ApplyProgress', 'Metrics'] as const;
