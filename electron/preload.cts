// The only bridge between the sandboxed console and the shell: two functions, no Electron objects.
// Sandboxed preloads may require only 'electron' (and a few built-ins), hence the repeated channel names.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';

const CALL_CHANNEL = 'opdbus:call';
const PROGRESS_CHANNEL = 'opdbus:progress';

contextBridge.exposeInMainWorld('opdbus', {
  call: (method: string, request: unknown): Promise<unknown> =>
    ipcRenderer.invoke(CALL_CHANNEL, method, request),
  onProgress: (listener: (payload: unknown) => void): (() => void) => {
    const forward = (_event: IpcRendererEvent, payload: unknown): void => listener(payload);
    ipcRenderer.on(PROGRESS_CHANNEL, forward);
    return () => {
      ipcRenderer.removeListener(PROGRESS_CHANNEL, forward);
    };
  },
});
