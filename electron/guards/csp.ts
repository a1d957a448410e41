import { consolePolicy } from '../../main/common/contract/index.js';

/**
 * The Content-Security-Policy of the console in the shell: its own scripts, workers and fonts,
 * no network at all (it talks to the core through IPC), no eval. Monaco inserts <style> elements.
 */
export const SHELL_CSP = consolePolicy("'none'");
