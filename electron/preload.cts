// The only bridge between the sandboxed console and the shell: two functions, no Electron objects.
// Sandboxed preloads may require only 'electron' (and a few built-ins), hence the repeated channel
// and signal names. Payloads are checked against the contract's schemas in the renderer.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';

const CALL_CHANNEL = 'opdbus:call';
const SIGNAL_CHANNEL = 'opdbus:signal';
const SIGNAL_NAMES: readonly string[] = ['ApplyProgress', 'Metrics'];

contextBridge.exposeInMainWorld('opdbus', {
  call: (method: string, request: unknown): Promise<unknown> =>
    ipcRenderer.invoke(CALL_CHANNEL, method, request),
  onSignal: (name: string, listener: (payload: unknown) => void): (() => void) => {
    if (!SIGNAL_NAMES.includes(name)) throw new TypeError(`no signal named ${String(name)}`);
    if (typeof listener !== 'function') throw new TypeError('the listener must be a function');
    const forward = (_event: IpcRendererEvent, signal: unknown, payload: unknown): void => {
      if (signal === name) listener(payload);
    };
    ipcRenderer.on(SIGNAL_CHANNEL, forward);
    return () => {
      ipcRenderer.removeListener(SIGNAL_CHANNEL, forward);
    };
  },
});
