import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

/**
 * Monaco's entry (monaco-editor/esm/vs/index.js) registers ~80 languages and the CSS, HTML and
 * TypeScript services with their workers (the TypeScript worker alone is 6.9 MB); the console edits
 * JSON only. This drops those registrations from the entry and keeps the editor, its contributions and
 * the JSON service (`monaco.json`), so a language Monaco adds later is left out the same way.
 */
function monacoJsonOnly(): Plugin {
  const entry = /[\\/]monaco-editor[\\/]esm[\\/]vs[\\/]index\.js$/;
  return {
    name: 'monaco-json-only',
    enforce: 'pre',
    transform(code, id) {
      if (!entry.test(id.split('?')[0] ?? '')) return null;
      const kept = code.split('\n').filter((line) => {
        if (/^import '\.\/languages\/definitions\/[^/]+\/register\.js';$/.test(line)) return false;
        const service = /__src_languages_features_(\w+)_register_ts/.exec(line);
        return service === null || service[1] === 'json';
      });
      if (kept.length === code.split('\n').length) {
        this.error('monaco-json-only: the entry has no language registrations to drop; its layout changed');
      }
      return { code: kept.join('\n'), map: null };
    },
  };
}

// The console's bundle: served by `op-dbus serve` and loaded by the Electron shell from dist/renderer.
// Relative asset URLs (base './') work under both origins; Monaco's workers are emitted as ES chunks.
export default defineConfig({
  root: import.meta.dirname,
  base: './',
  plugins: [monacoJsonOnly(), react()],
  worker: { format: 'es' },
  build: {
    outDir: '../dist/renderer',
    emptyOutDir: true,
    chunkSizeWarningLimit: 8192,
    sourcemap: false,
  },
});
