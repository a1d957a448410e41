import { useEffect } from 'react';
import { AuditView } from './audit/audit-view.js';
import { useCore, useTransportStatus } from './core/core-context.js';
import { useWitness } from './core/core-queries.js';
import { EditorView } from './editor/editor-view.js';
import { HostView } from './host/host-view.js';
import { PlanView } from './plan/plan-view.js';
import { PluginsView } from './plugin-list/plugins-view.js';
import { CommandPalette, useCommands } from './shell/command-palette.js';
import { useConsoleStore, type ConsoleView } from './state/console-store.js';

const TABS: { view: ConsoleView; label: string }[] = [
  { view: 'editor', label: 'Desired state' },
  { view: 'plan', label: 'Plan & apply' },
  { view: 'audit', label: 'Audit log' },
  { view: 'host', label: 'Host' },
  { view: 'plugins', label: 'Plugins' },
];

/** The console: one header, five views; the views stay mounted so the editor keeps its undo history. */
export function App() {
  const core = useCore();
  const view = useConsoleStore((s) => s.view);
  const showView = useConsoleStore((s) => s.showView);
  const pendingChanges = useConsoleStore((s) =>
    s.plan?.hasChanges === true && s.applyResult === undefined ? s.plan.diffs.length : 0,
  );
  const status = useTransportStatus();
  // the witness runs when the console connects, whichever view is open
  const tampered = useWitness().data?.status === 'tampering';

  useEffect(
    () => core.transport.onSignal('ApplyProgress', (p) => useConsoleStore.getState().progressed(p)),
    [core],
  );
  const theme = useConsoleStore((s) => s.theme);
  const setTheme = useConsoleStore((s) => s.setTheme);
  useCommands(
    [
      ...TABS.map((t, i) => ({
        id: `view-${t.view}`,
        title: `Go to ${t.label}`,
        keys: `Alt+${i + 1}`,
        run: () => showView(t.view),
      })),
      { id: 'theme-dark', title: 'Theme: dark', run: () => setTheme('dark') },
      { id: 'theme-light', title: 'Theme: light', run: () => setTheme('light') },
    ],
    [showView, setTheme],
  );
  // Alt+1…5 switch views from anywhere, also from inside the editor
  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      const n = Number(e.key);
      if (e.altKey && !e.ctrlKey && Number.isInteger(n) && n >= 1 && n <= TABS.length) {
        e.preventDefault();
        showView((TABS[n - 1] as (typeof TABS)[number]).view);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [showView]);

  return (
    <div className="app">
      <header className="topbar">
        <div className="brand">
          <span className="logo" aria-hidden>
            ⬢
          </span>
          operation-dbus <span className="brand-sub">console</span>
        </div>
        <nav className="tabs" role="tablist">
          {TABS.map((t) => (
            <button
              key={t.view}
              type="button"
              role="tab"
              aria-selected={view === t.view}
              className={view === t.view ? 'active' : ''}
              data-testid={`tab-${t.view}`}
              onClick={() => showView(t.view)}
            >
              {t.label}
              {t.view === 'plan' && pendingChanges > 0 && (
                <span className="tab-dot" aria-label="a plan is waiting" />
              )}
              {t.view === 'audit' && tampered && (
                <span className="tab-alert" data-testid="tab-audit-alert" aria-label="audit log tampering">
                  !
                </span>
              )}
            </button>
          ))}
        </nav>
        <button
          type="button"
          className="palette-button"
          data-testid="open-palette"
          aria-keyshortcuts="Control+K"
          onClick={() => useConsoleStore.getState().setPaletteOpen(true)}
        >
          Commands <kbd>Ctrl+K</kbd>
        </button>
        <button
          type="button"
          className="theme-button"
          data-testid="toggle-theme"
          aria-label={`Switch to the ${theme === 'dark' ? 'light' : 'dark'} theme`}
          onClick={() => setTheme(theme === 'dark' ? 'light' : 'dark')}
        >
          {theme === 'dark' ? '☀' : '☾'}
        </button>
        <div className={`connection ${status}`} data-testid="connection">
          <span className="dot" aria-hidden />
          {status === 'open'
            ? `Connected to the core via ${core.transport.via}`
            : status === 'connecting'
              ? 'Connecting…'
              : 'Disconnected'}
        </div>
      </header>
      {status === 'closed' && (
        <div className="notice notice-error banner" role="alert">
          <strong>The console lost its connection.</strong>
          <span className="notice-text">Start `op-dbus serve` again and open the new URL it prints.</span>
        </div>
      )}
      <main>
        <div className="view-slot" hidden={view !== 'editor'}>
          <EditorView />
        </div>
        <div className="view-slot" hidden={view !== 'plan'}>
          <PlanView />
        </div>
        <div className="view-slot" hidden={view !== 'audit'}>
          <AuditView />
        </div>
        <div className="view-slot" hidden={view !== 'host'}>
          <HostView />
        </div>
        <div className="view-slot" hidden={view !== 'plugins'}>
          <PluginsView />
        </div>
      </main>
      <CommandPalette />
    </div>
  );
}
