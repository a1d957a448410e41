import { isConsoleUrl } from './app-origin.js';

/**
 * Whether the window may navigate to url: only within the console (a reload); every other
 * target, including links in error messages or a compromised renderer's redirects, is refused.
 */
export function isAllowedNavigation(url: string): boolean {
  return isConsoleUrl(url);
}

/** The answer to every window.open and target=_blank: no new windows, ever. */
export function windowOpenDecision(): { action: 'deny' } {
  return { action: 'deny' };
}
