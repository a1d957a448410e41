import { create } from 'zustand';
import type {
  ApplyProgress,
  ApplyResponse,
  ApproveResponse,
  Plan,
} from '../../../main/common/contract/index.js';

export type ConsoleView = 'editor' | 'plan' | 'audit' | 'host' | 'plugins';
export type Theme = 'light' | 'dark';

/** One action of the command palette; views register theirs while they are mounted. */
export interface PaletteCommand {
  id: string;
  title: string;
  /** A shortcut to show beside it, e.g. "Ctrl+Enter". */
  keys?: string;
  run(): void;
}

export const STARTER_DOCUMENT = `// Desired state of this host (JSON with comments).
// Ctrl+Space completes names and values from the core's schema.
{
  "version": 1,
  "plugins": {
    "hostname": {
    }
  }
}
`;

/** The UI state of the console; data that belongs to the core lives in react-query instead. */
export interface ConsoleState {
  view: ConsoleView;
  document: string;
  /** The name of the file the document was opened from or saved to; shown in error positions. */
  fileName: string | undefined;
  plan: Plan | undefined;
  /** The exact text the plan was made from: an edit after planning makes the plan outdated. */
  plannedDocument: string | undefined;
  approval: ApproveResponse | undefined;
  applyResult: ApplyResponse | undefined;
  progress: ApplyProgress[];
  /** The core's StalePlan message when Apply found the host changed since the plan. */
  staleMessage: string | undefined;
  /** The text as last opened or saved: the document is dirty while it differs. */
  savedText: string;
  /**
   * The editor has keys the store has not read yet: it reads the model's text a moment after typing
   * stops (a 1 MB document is not copied out on every key), or at once through documentNow().
   */
  pendingEdit: boolean;
  /** Reads the editor's pending text into the store (registered by the editor; nothing without one). */
  flushEdits: () => void;
  theme: Theme;
  /** A resource picked elsewhere (the host graph): the editor reveals it. */
  focus: { plugin: string; resource: string; seq: number } | undefined;
  /** The plan view's filter of its changes. */
  planFilter: string;
  commands: PaletteCommand[];
  paletteOpen: boolean;
  setTheme(theme: Theme): void;
  focusResource(plugin: string, resource: string, where: 'editor' | 'plan'): void;
  setPlanFilter(filter: string): void;
  registerCommands(commands: PaletteCommand[]): () => void;
  setPaletteOpen(open: boolean): void;
  showView(view: ConsoleView): void;
  editDocument(text: string): void;
  /** The editor changed: the store reads its text later (flushEdits), the document is dirty now. */
  markEdited(): void;
  registerFlush(flush: () => void): () => void;
  /** The document as it is in the editor now (pending keys read first): what Plan and Save use. */
  documentNow(): string;
  openDocument(fileName: string, text: string): void;
  savedAs(fileName: string, text: string): void;
  planned(plan: Plan, document: string): void;
  approved(approval: ApproveResponse): void;
  progressed(p: ApplyProgress): void;
  applied(result: ApplyResponse): void;
  wentStale(message: string): void;
}

/** What the theme needs of the browser; absent under Node (the store's unit tests). */
interface BrowserGlobals {
  localStorage?: { getItem(key: string): string | null; setItem(key: string, value: string): void };
  matchMedia?: (query: string) => { matches: boolean };
  document?: { documentElement: { dataset: Record<string, string | undefined> } };
}
const browser = globalThis as unknown as BrowserGlobals;

/** The theme the admin chose last (kept in this browser), else the system's. */
export function initialTheme(): Theme {
  try {
    const kept = browser.localStorage?.getItem('op-dbus-theme');
    if (kept === 'light' || kept === 'dark') return kept;
  } catch {
    // storage refused (private window): the system's choice
  }
  return browser.matchMedia?.('(prefers-color-scheme: dark)').matches === true ? 'dark' : 'light';
}

/** Puts the theme on the root element, where the style sheet's variables follow it. */
export function applyTheme(theme: Theme): void {
  if (browser.document !== undefined) browser.document.documentElement.dataset['theme'] = theme;
}

const startTheme = initialTheme();
applyTheme(startTheme);

export const useConsoleStore = create<ConsoleState>()((set, get) => ({
  view: 'editor',
  document: STARTER_DOCUMENT,
  fileName: undefined,
  plan: undefined,
  plannedDocument: undefined,
  approval: undefined,
  applyResult: undefined,
  progress: [],
  staleMessage: undefined,
  savedText: STARTER_DOCUMENT,
  pendingEdit: false,
  flushEdits: () => undefined,
  theme: startTheme,
  focus: undefined,
  planFilter: '',
  commands: [],
  paletteOpen: false,
  focusResource: (plugin, resource, where) =>
    where === 'editor'
      ? set({ view: 'editor', focus: { plugin, resource, seq: (get().focus?.seq ?? 0) + 1 } })
      : set({ view: 'plan', planFilter: `${plugin} ${resource}` }),
  setPlanFilter: (planFilter) => set({ planFilter }),
  setTheme: (theme) => {
    // before the state changes: components that read the theme's colours on the change (charts) see the new ones
    applyTheme(theme);
    try {
      browser.localStorage?.setItem('op-dbus-theme', theme);
    } catch {
      // not kept: the choice lasts this page
    }
    set({ theme });
  },
  registerCommands: (commands) => {
    set({ commands: [...get().commands.filter((c) => !commands.some((n) => n.id === c.id)), ...commands] });
    return () => set({ commands: get().commands.filter((c) => !commands.includes(c)) });
  },
  setPaletteOpen: (paletteOpen) => set({ paletteOpen }),
  showView: (view) => set({ view }),
  editDocument: (document) => set({ document, pendingEdit: false }),
  markEdited: () => {
    if (!get().pendingEdit) set({ pendingEdit: true });
  },
  registerFlush: (flush) => {
    set({ flushEdits: flush });
    return () => {
      if (get().flushEdits === flush) set({ flushEdits: () => undefined, pendingEdit: false });
    };
  },
  documentNow: () => {
    get().flushEdits();
    return get().document;
  },
  openDocument: (fileName, document) => set({ fileName, document, savedText: document, pendingEdit: false }),
  savedAs: (fileName, text) => set({ fileName, savedText: text }),
  planned: (plan, document) =>
    set({
      plan,
      plannedDocument: document,
      approval: undefined,
      applyResult: undefined,
      progress: [],
      staleMessage: undefined,
    }),
  approved: (approval) => set({ approval }),
  progressed: (p) => {
    if (p.planId === get().plan?.id) set({ progress: [...get().progress, p] });
  },
  applied: (applyResult) => set({ applyResult }),
  wentStale: (staleMessage) => set({ staleMessage, approval: undefined }),
}));
