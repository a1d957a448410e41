import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Signals } from '../main/common/contract/index.js';
import { CALL_CHANNEL, SIGNAL_CHANNEL, SIGNAL_NAMES } from './ipc-channels.js';

const preload = readFileSync(new URL('./preload.cts', import.meta.url), 'utf8');

describe('IPC channels', () => {
  it('the sandboxed preload names the same channels as the main process', () => {
    expect(preload).toContain(`const CALL_CHANNEL = '${CALL_CHANNEL}';`);
    expect(preload).toContain(`const SIGNAL_CHANNEL = '${SIGNAL_CHANNEL}';`);
  });

  it('forwards exactly the signals of the contract, and the preload lists the same names', () => {
    expect([...SIGNAL_NAMES].sort()).toEqual(Object.keys(Signals).sort());
    expect(preload).toContain(
      `const SIGNAL_NAMES: readonly string[] = [${SIGNAL_NAMES.map((n) => `'${n}'`).join(', ')}];`,
    );
  });

  it('the preload exposes exactly call and onSignal, and no Electron object', () => {
    expect(preload.match(/exposeInMainWorld\(/g)).toHaveLength(1);
    expect(preload).not.toMatch(/exposeInMainWorld\([^)]*ipcRenderer\s*[,)]/);
    const exposed = [...preload.matchAll(/^ {2}(\w+): \(/gm)].map((m) => m[1]);
    expect(exposed).toEqual(['call', 'onSignal']);
  });
});
