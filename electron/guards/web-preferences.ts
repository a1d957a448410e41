import type { WebPreferences } from 'electron';

/**
 * The console window's web preferences: the renderer is a sandboxed web page that reaches the
 * shell only through the preload's two functions (Electron security checklist items 2-4, 6, 7).
 */
export function secureWebPreferences(preload: string): WebPreferences {
  return {
    preload,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    experimentalFeatures: false,
    webviewTag: false,
    navigateOnDragDrop: false,
    spellcheck: false,
    safeDialogs: true,
    // middle-click would open links in a new window outside setWindowOpenHandler's reach
    disableBlinkFeatures: 'Auxclick',
  };
}
