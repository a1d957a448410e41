import { isConsoleUrl } from './app-origin.js';

/** What the IPC handler knows about who sent a message (from the event's senderFrame). */
export interface IpcSender {
  /** The sending frame's URL, or undefined when the frame is gone. */
  frameUrl: string | undefined;
  /** True when the sending frame is its page's top frame. */
  isMainFrame: boolean;
  /** The id of the sending WebContents. */
  webContentsId: number;
}

/**
 * Accepts an IPC message only from the top frame of the console's own window showing the
 * console's own origin: not from an iframe, another window or a page it was navigated to.
 */
export function isTrustedSender(sender: IpcSender, consoleWebContentsId: number | undefined): boolean {
  if (consoleWebContentsId === undefined || sender.webContentsId !== consoleWebContentsId) return false;
  if (!sender.isMainFrame || sender.frameUrl === undefined) return false;
  return isConsoleUrl(sender.frameUrl);
}
