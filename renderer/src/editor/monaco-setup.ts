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
