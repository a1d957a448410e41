import { useEffect, useMemo, useRef, useState } from 'react';
import { useConsoleStore, type PaletteCommand } from '../state/console-store.js';

/** Commands whose title holds every word of the query, in any order (case-insensitive). */
export function matchCommands(commands: readonly PaletteCommand[], query: string): PaletteCommand[] {
  const words = query
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w !== '');
  return commands
    .filter((c) => words.every((w) => c.title.toLowerCase().includes(w)))
    .sort((a, b) => a.title.localeCompare(b.title));
}

/** Registers commands for as long as the calling component is mounted. */
export function useCommands(commands: PaletteCommand[], deps: readonly unknown[]): void {
  const register = useConsoleStore((s) => s.registerCommands);
  useEffect(() => register(commands), deps);
}

/**
 * The command palette (Ctrl+K, or Ctrl+Shift+P as in editors): every action of the console by name,
 * typed and chosen with the keyboard. A modal dialog with a combobox over a listbox (WAI-ARIA).
 */
export function CommandPalette() {
  const open = useConsoleStore((s) => s.paletteOpen);
  const setOpen = useConsoleStore((s) => s.setPaletteOpen);
  const commands = useConsoleStore((s) => s.commands);
  const [query, setQuery] = useState('');
  const [active, setActive] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  const returnFocus = useRef<Element | null>(null);
  const shown = useMemo(() => matchCommands(commands, query), [commands, query]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      const k = e.key.toLowerCase();
      if ((e.ctrlKey || e.metaKey) && (k === 'k' || (e.shiftKey && k === 'p'))) {
        e.preventDefault();
        e.stopPropagation();
        setOpen(!useConsoleStore.getState().paletteOpen);
      }
    };
    window.addEventListener('keydown', onKey, true);
    return () => window.removeEventListener('keydown', onKey, true);
  }, [setOpen]);

  useEffect(() => {
    if (open) {
      returnFocus.current = document.activeElement;
      setQuery('');
      setActive(0);
      input.current?.focus();
    } else if (returnFocus.current instanceof HTMLElement) {
      returnFocus.current.focus();
    }
  }, [open]);

  if (!open) return null;
  const run = (c: PaletteCommand | undefined): void => {
    if (c === undefined) return;
    setOpen(false);
    c.run();
  };
  const selected = shown[Math.min(active, shown.length - 1)];
  return (
    <div className="palette-backdrop" onMouseDown={() => setOpen(false)}>
      <div
        className="palette"
        role="dialog"
        aria-modal="true"
        aria-label="Command palette"
        data-testid="command-palette"
        onMouseDown={(e) => e.stopPropagation()}
      >
        <input
          ref={input}
          className="palette-input"
          role="combobox"
          aria-expanded="true"
          aria-controls="palette-list"
          aria-activedescendant={selected === undefined ? undefined : `palette-${selected.id}`}
          aria-label="Type a command"
          placeholder="Type a command: plan, theme, audit…"
          value={query}
          onChange={(e) => {
            setQuery(e.target.value);
            setActive(0);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Escape') setOpen(false);
            else if (e.key === 'ArrowDown') setActive((a) => Math.min(a + 1, shown.length - 1));
            else if (e.key === 'ArrowUp') setActive((a) => Math.max(a - 1, 0));
            else if (e.key === 'Enter') run(selected);
            else return;
            e.preventDefault();
          }}
        />
        <ul id="palette-list" role="listbox" aria-label="Commands" className="palette-list">
          {shown.length === 0 && (
            <li className="palette-empty" role="option" aria-selected="false" aria-disabled="true">
              No command matches “{query}”
            </li>
          )}
          {shown.map((c) => (
            <li
              key={c.id}
              id={`palette-${c.id}`}
              role="option"
              aria-selected={c === selected}
              className={c === selected ? 'active' : ''}
              data-testid={`palette-${c.id}`}
              onMouseEnter={() => setActive(shown.indexOf(c))}
              onClick={() => run(c)}
            >
              <span>{c.title}</span>
              {c.keys !== undefined && <kbd>{c.keys}</kbd>}
            </li>
          ))}
        </ul>
      </div>
    </div>
  );
}
