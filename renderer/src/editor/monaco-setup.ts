// Monaco comes from the bundle, never a CDN: @monaco-editor/react is pointed at the imported
// module, and the editor and JSON workers are Vite worker chunks served from the console's origin.
import { loader } from '@monaco-editor/react';
import * as monaco from 'monaco-editor';
import EditorWorker from 'monaco-editor/editor/editor.worker?worker';
import JsonWorker from 'monaco-editor/languages/features/json/json.worker?worker';

self.MonacoEnvironment = {
  getWorker: (_workerId: string, label: string) => (label === 'json' ? new JsonWorker() : new EditorWorker()),
};
loader.config({ monaco });

export { monaco };

/** The model of the desired-state document; the composed schema is bound to it. */
export const DOCUMENT_PATH = 'desired-state.jsonc';
const SCHEMA_URI = 'opdbus://schema/desired-state.json';

/** Validates and completes the document against the core's composed schema, comments and trailing commas allowed. */
export function bindDocumentSchema(schema: Record<string, unknown> | undefined): void {
  monaco.json.jsonDefaults.setDiagnosticsOptions({
    validate: true,
    allowComments: true,
    comments: 'ignore',
    trailingCommas: 'ignore',
    enableSchemaRequest: false,
    schemaValidation: 'error',
    schemas: schema === undefined ? [] : [{ uri: SCHEMA_URI, fileMatch: [DOCUMENT_PATH], schema }],
  });
}

// The editor's two themes: Monaco's own, with comments dark enough (light) or bright enough (dark)
// for WCAG AA contrast on their background (the e2e accessibility check holds both to it).
monaco.editor.defineTheme('opdbus-light', {
  base: 'vs',
  inherit: true,
  rules: [{ token: 'comment', foreground: '3f6e3f' }],
  colors: { 'editorLineNumber.foreground': '#5d6b7e' },
});
monaco.editor.defineTheme('opdbus-dark', {
  base: 'vs-dark',
  inherit: true,
  rules: [{ token: 'comment', foreground: '8fc78f' }],
  colors: { 'editorLineNumber.foreground': '#9aa8ba' },
});

/** The Monaco theme of a console theme. */
export function editorTheme(theme: 'light' | 'dark'): string {
  return theme === 'dark' ? 'opdbus-dark' : 'opdbus-light';
}
