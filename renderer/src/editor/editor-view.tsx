import { Editor, type OnMount } from '@monaco-editor/react';
import { useEffect, useRef, useState } from 'react';
import { OpError } from '../../../main/common/contract/index.js';
import { useDocumentSchemaQuery, useHostStateMutation, usePlanMutation } from '../core/core-queries.js';
import { useCommands } from '../shell/command-palette.js';
import { ErrorNotice } from '../shell/error-notice.js';
import { planProblems, problemSentence, type PlanProblem } from './plan-problems.js';
import { useConsoleStore } from '../state/console-store.js';
import { saveDocumentFile } from './file-access.js';
import { hostDocument, leftOutNote } from './host-document.js';
import { bindDocumentSchema, DOCUMENT_PATH, editorTheme, monaco } from './monaco-setup.js';

const CORE_MARKER_OWNER = 'op-dbus-core';
/** How long after the last key the store reads the editor's text (Plan and Save read it at once). */
const EDIT_SETTLE_MS = 150;

interface Problem {
  severity: 'error' | 'warning' | 'info';
  line: number;
  column: number;
  message: string;
}

/** The desired-state editor: JSONC with the core's schema, open/save, and Plan. */
export function EditorView() {
  const text = useConsoleStore((s) => s.document);
  const dirty = useConsoleStore((s) => s.pendingEdit || s.document !== s.savedText);
  const theme = useConsoleStore((s) => s.theme);
  // what the editor itself last reported: a store change that differs came from outside (open, host state)
  const fromEditor = useRef<string>(text);
  const fileName = useConsoleStore((s) => s.fileName);
  const editDocument = useConsoleStore((s) => s.editDocument);
  const schema = useDocumentSchemaQuery();
  const plan = usePlanMutation();
  const hostState = useHostStateMutation();
  const [problems, setProblems] = useState<Problem[]>([]);
  // what "Start from host state" left out because the core redacted it, until another document is opened
  const [leftOut, setLeftOut] = useState<string[]>([]);
  const editorRef = useRef<monaco.editor.IStandaloneCodeEditor | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const runPlan = useRef<() => void>(() => undefined);
  const markerListener = useRef<monaco.IDisposable | null>(null);
  // set while the store's text is pushed into the model: that change is not the user's
  const pushing = useRef(false);

  runPlan.current = () => {
    const s = useConsoleStore.getState();
    plan.mutate({ document: s.documentNow(), file: s.fileName });
  };

  useEffect(() => bindDocumentSchema(schema.data?.schema), [schema.data]);

  // The core's own parse and schema errors become markers at the line and column it names.
  useEffect(() => {
    const model = editorRef.current?.getModel();
    if (model === null || model === undefined) return;
    const where = plan.error instanceof OpError ? plan.error.where : undefined;
    const each = plan.error instanceof OpError ? planProblems(plan.error.details) : [];
    const placed = each.filter((p): p is PlanProblem & { line: number } => p.line !== undefined);
    if (plan.error === null || (where?.line === undefined && placed.length === 0)) {
      monaco.editor.setModelMarkers(model, CORE_MARKER_OWNER, []);
      return;
    }
    const marker = (
      line0: number,
      column: number | undefined,
      message: string,
    ): monaco.editor.IMarkerData => {
      const line = Math.min(line0, model.getLineCount());
      return {
        severity: monaco.MarkerSeverity.Error,
        message,
        startLineNumber: line,
        startColumn: column ?? 1,
        endLineNumber: line,
        endColumn: model.getLineMaxColumn(line),
        source: 'op-dbus core',
      };
    };
    // one marker per resource the core named, else one for the whole error where it points
    monaco.editor.setModelMarkers(
      model,
      CORE_MARKER_OWNER,
      placed.length > 0
        ? placed.map((p) => marker(p.line, p.column, p.message))
        : [
            marker(
              where?.line ?? 1,
              where?.column,
              plan.error instanceof Error ? plan.error.message : String(plan.error),
            ),
          ],
    );
  }, [plan.error]);

  // The editor is not controlled (a 1 MB document must not be compared and re-set on every key):
  // text that the store got from elsewhere is pushed into the model here, as one undoable edit.
  useEffect(() => {
    const model = editorRef.current?.getModel();
    if (model === null || model === undefined || text === fromEditor.current) return;
    fromEditor.current = text;
    pushing.current = true;
    try {
      editorRef.current?.executeEdits('console', [{ range: model.getFullModelRange(), text }]);
    } finally {
      pushing.current = false;
    }
  }, [text]);

  // a resource picked in the host graph: its line in the document (its id, or its key), revealed and selected
  const focus = useConsoleStore((s) => s.focus);
  useEffect(() => {
    const editor = editorRef.current;
    const model = editor?.getModel();
    if (focus === undefined || editor === null || model === null || model === undefined) return;
    const quoted = JSON.stringify(focus.resource);
    const match =
      model.findNextMatch(`"id": ${quoted}`, { lineNumber: 1, column: 1 }, false, true, null, false) ??
      model.findNextMatch(`${quoted}:`, { lineNumber: 1, column: 1 }, false, true, null, false);
    if (match === null) return;
    editor.setSelection(match.range);
    editor.revealRangeInCenter(match.range);
    editor.focus();
  }, [focus]);

  const format = (): void => void editorRef.current?.getAction('editor.action.formatDocument')?.run();

  useCommands(
    [
      { id: 'plan', title: 'Plan the desired state', keys: 'Ctrl+Enter', run: () => runPlan.current() },
      { id: 'format', title: 'Format the document', keys: 'Shift+Alt+F', run: format },
      { id: 'open', title: 'Open a document…', run: () => fileInput.current?.click() },
      { id: 'save', title: 'Save the document', run: () => void onSaveRef.current() },
      {
        id: 'from-host',
        title: "Start from the host's current state",
        run: () => onStartFromHostRef.current(),
      },
    ],
    [],
  );

  const onMount: OnMount = (editor) => {
    editorRef.current = editor;
    // a key only marks the document edited; its text is read once typing pauses, or when Plan or
    // Save needs it (documentNow): copying a 1 MB model out on every key costs the key its frame
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = (): void => {
      clearTimeout(timer);
      // a disposed editor has no model, and its empty text is not the document
      if (!useConsoleStore.getState().pendingEdit || editor.getModel() === null) return;
      const v = editor.getValue();
      fromEditor.current = v;
      editDocument(v);
    };
    unregisterFlush.current?.();
    unregisterFlush.current = useConsoleStore.getState().registerFlush(flush);
    editor.onDidChangeModelContent(() => {
      if (pushing.current) return;
      useConsoleStore.getState().markEdited();
      clearTimeout(timer);
      timer = setTimeout(flush, EDIT_SETTLE_MS);
    });
    editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.Enter, () => runPlan.current());
    const uri = editor.getModel()?.uri;
    const refresh = (): void => {
      if (uri === undefined) return;
      setProblems(
        monaco.editor.getModelMarkers({ resource: uri }).map((m) => ({
          severity:
            m.severity === monaco.MarkerSeverity.Error
              ? 'error'
              : m.severity === monaco.MarkerSeverity.Warning
                ? 'warning'
                : 'info',
          line: m.startLineNumber,
          column: m.startColumn,
          message: m.message,
        })),
      );
    };
    markerListener.current?.dispose();
    markerListener.current = monaco.editor.onDidChangeMarkers(refresh);
    refresh();
  };

  const unregisterFlush = useRef<(() => void) | null>(null);
  useEffect(
    () => () => {
      markerListener.current?.dispose();
      // the text typed last is kept when the view goes (another tab): read before the editor is gone
      useConsoleStore.getState().flushEdits();
      unregisterFlush.current?.();
    },
    [],
  );

  const onOpen = async (file: File | undefined): Promise<void> => {
    if (file === undefined) return;
    useConsoleStore.getState().openDocument(file.name, await file.text());
    setLeftOut([]);
    plan.reset();
  };

  const onSave = async (): Promise<void> => {
    const s = useConsoleStore.getState();
    const text = s.documentNow();
    const saved = await saveDocumentFile(s.fileName ?? 'desired-state.jsonc', text);
    if (saved !== undefined) s.savedAs(saved, text);
  };

  const onStartFromHost = (): void => {
    hostState.mutate(undefined, {
      onSuccess: (q) => {
        const doc = hostDocument(q, new Date());
        setLeftOut(doc.leftOut);
        editDocument(doc.text);
      },
    });
  };

  const onSaveRef = useRef(onSave);
  onSaveRef.current = onSave;
  const onStartFromHostRef = useRef(onStartFromHost);
  onStartFromHostRef.current = onStartFromHost;

  const errors = problems.filter((p) => p.severity === 'error').length;

  return (
    <section className="view editor-view" aria-label="Desired state">
      <div className="toolbar">
        <div className="toolbar-group">
          <span className="file-name" title="the document's name, shown in error positions">
            {fileName ?? 'untitled.jsonc'}
          </span>
          {dirty && (
            <span className="dirty-mark" data-testid="dirty" title="changed since it was opened or saved">
              ● unsaved
            </span>
          )}
          <button type="button" onClick={() => fileInput.current?.click()}>
            Open…
          </button>
          <input
            ref={fileInput}
            type="file"
            accept=".json,.jsonc,application/json"
            hidden
            data-testid="open-file"
            onChange={(e) => {
              void onOpen(e.target.files?.[0]);
              // cleared so that opening the same file again (after edits) still fires a change
              e.target.value = '';
            }}
          />
          <button type="button" onClick={() => void onSave()}>
            Save…
          </button>
          <button type="button" onClick={onStartFromHost} disabled={hostState.isPending}>
            Start from host state
          </button>
          <button type="button" data-testid="format-button" onClick={format} aria-keyshortcuts="Shift+Alt+F">
            Format
          </button>
        </div>
        <div className="toolbar-group">
          <span className={`schema-state ${schema.isError ? 'bad' : ''}`}>
            {schema.isPending ? 'Loading schema…' : schema.isError ? 'No schema' : 'Schema from the core'}
          </span>
          <button
            type="button"
            className="primary"
            data-testid="plan-button"
            onClick={() => runPlan.current()}
            disabled={plan.isPending}
            title="Ctrl+Enter"
          >
            {plan.isPending ? 'Planning…' : 'Plan'}
          </button>
        </div>
      </div>
      <ErrorNotice error={schema.error} title="The core's schema is unavailable" />
      {plan.error instanceof OpError && planProblems(plan.error.details).length > 0 ? (
        <PlanProblemList error={plan.error} />
      ) : (
        <ErrorNotice error={plan.error} title="The core could not plan this document" />
      )}
      <ErrorNotice error={hostState.error} title="Could not read the host's state" />
      {leftOut.length > 0 && (
        <div className="notice notice-warning" role="status" data-testid="host-state-left-out">
          <strong>Secret values left out</strong>
          <span className="notice-text">{leftOutNote(leftOut)}</span>
        </div>
      )}
      <div className="editor-frame" data-testid="desired-editor">
        <Editor
          path={DOCUMENT_PATH}
          language="json"
          defaultValue={text}
          theme={editorTheme(theme)}
          onMount={onMount}
          options={{
            minimap: { enabled: false },
            fontSize: 13,
            tabSize: 2,
            automaticLayout: true,
            scrollBeyondLastLine: false,
            renderLineHighlight: 'line',
            fixedOverflowWidgets: true,
            // a dimmed number for the line after the final newline fails contrast: number it as any other
            renderFinalNewline: 'on',
          }}
        />
      </div>
      <div className="problems" data-testid="problems">
        <div className="problems-head">
          Problems <span className={`count ${errors > 0 ? 'bad' : ''}`}>{problems.length}</span>
        </div>
        {problems.length === 0 ? (
          <div className="problems-empty">No problems: the document matches the schema.</div>
        ) : (
          <ul>
            {problems.map((p, i) => (
              <li key={i} className={p.severity}>
                <button
                  type="button"
                  onClick={() => {
                    editorRef.current?.setPosition({ lineNumber: p.line, column: p.column });
                    editorRef.current?.revealLineInCenter(p.line);
                    editorRef.current?.focus();
                  }}
                >
                  <span className="pos">
                    {p.line}:{p.column}
                  </span>
                  {p.message}
                </button>
              </li>
            ))}
          </ul>
        )}
      </div>
    </section>
  );
}

/** Each resource the core refused, one sentence apiece (the notice above has them all on one line). */
function PlanProblemList({ error }: { error: unknown }) {
  const problems = error instanceof OpError ? planProblems(error.details) : [];
  if (problems.length === 0) return null;
  const code = error instanceof OpError ? error.code : 'Internal';
  return (
    <div
      className="notice notice-error resource-problems"
      role="alert"
      data-testid="error-notice"
      data-code={code}
    >
      <strong>
        The core could not plan this document ({code}):{' '}
        {problems.length === 1 ? 'one problem' : `${problems.length} problems`}, each where it is in the
        document.
      </strong>
      <ul
        className="plan-problems"
        data-testid="plan-problems"
        aria-label="What the core refused, per resource"
      >
        {problems.map((p, i) => (
          <li key={i} data-testid="plan-problem" data-pointer={p.pointer ?? ''}>
            {problemSentence(p)}
          </li>
        ))}
      </ul>
    </div>
  );
}
