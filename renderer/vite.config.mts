import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The console's bundle: served by `op-dbus serve` and loaded by the Electron shell from dist/renderer.
// Relative asset URLs (base './') work under both origins; Monaco's workers are emitted as ES chunks.
export default defineConfig({
  root: import.meta.dirname,
  base: './',
  plugins: [react()],
  worker: { format: 'es' },
  build: {
    outDir: '../dist/renderer',
    emptyOutDir: true,
    chunkSizeWarningLimit: 8192,
    sourcemap: false,
  },
});
