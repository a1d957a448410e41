import { defineConfig } from 'vitest/config';

// Tests start real processes (dbus-daemon, polkitd, hostnamed, the core) in private sandboxes:
// files run one at a time so two sandboxes never compete for the machine's 2 cores.
export default defineConfig({
  test: {
    include: [
      'main/**/*.test.ts',
      'plugins/**/*.test.ts',
      'test/**/*.test.ts',
      'bench/**/*.test.ts',
      'renderer/**/*.test.ts',
      'electron/**/*.test.ts',
      'native/**/*.test.ts',
    ],
    globalSetup: ['test/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
