/**
 * The shell's IPC channels. preload.cts repeats these strings (a sandboxed preload cannot
 * require project files); ipc-channels.test.ts keeps the two in step.
 */
export const CALL_CHANNEL = 'opdbus:call';
export const PROGRESS_CHANNEL = 'opdbus:progress';
