import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CALL_CHANNEL, PROGRESS_CHANNEL } from './ipc-channels.js';

describe('IPC channels', () => {
  it('the sandboxed preload names the same channels as the main process', () => {
    const preload = readFileSync(new URL('./preload.cts', import.meta.url), 'utf8');
    expect(preload).toContain(`const CALL_CHANNEL = '${CALL_CHANNEL}';`);
    expect(preload).toContain(`const PROGRESS_CHANNEL = '${PROGRESS_CHANNEL}';`);
  });

  it('the preload exposes exactly call and onProgress, and no Electron object', () => {
    const preload = readFileSync(new URL('./preload.cts', import.meta.url), 'utf8');
    expect(preload.match(/exposeInMainWorld\(/g)).toHaveLength(1);
    expect(preload).not.toMatch(/exposeInMainWorld\([^)]*ipcRenderer\s*[,)]/);
  });
});
