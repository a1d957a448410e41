import { create } from 'zustand';
import type {
  ApplyProgress,
  ApplyResponse,
  ApproveResponse,
  Plan,
} from '../../../main/common/contract/index.js';

export type ConsoleView = 'editor' | 'plan' | 'audit' | 'host' | 'plugins';

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
  showView(view: ConsoleView): void;
  editDocument(text: string): void;
  openDocument(fileName: string, text: string): void;
  savedAs(fileName: string): void;
  planned(plan: Plan, document: string): void;
  approved(approval: ApproveResponse): void;
  progressed(p: ApplyProgress): void;
  applied(result: ApplyResponse): void;
  wentStale(message: string): void;
}

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
  showView: (view) => set({ view }),
  editDocument: (document) => set({ document }),
  openDocument: (fileName, document) => set({ fileName, document }),
  savedAs: (fileName) => set({ fileName }),
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
