import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

// The console end to end: a real sandbox (bus, polkitd, hostnamed, the core), `op-dbus serve` and
// Debian's Chromium driven by playwright-core. Separate from the unit tests: it needs both builds.
export default defineConfig({
  root: resolve(import.meta.dirname, '..'),
  test: {
    include: ['e2e/**/*.test.ts'],
    globalSetup: ['e2e/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
