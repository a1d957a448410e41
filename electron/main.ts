// The Electron shell: one window showing the console from app://console/, relaying its calls to
// the core over D-Bus as the user who runs the shell. The window is an untrusted web page.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  app,
  BrowserWindow,
  ipcMain,
  protocol,
  session,
  type IpcMainInvokeEvent,
  type WebContents,
} from 'electron';
// The shell's main process is a Node process and a D-Bus client of the core, as the CLI and `serve`
// are; only its renderer and preload must be limited to the contract (see the closing note of issue 3).
import { ManagerClient } from '../main/client/dbus/manager-client.js';
import { verifyEntryInclusion } from '../main/client/witness/inclusion.js';
import { witnessReporter } from '../main/client/witness/witness.js';
import { Signals, type SignalName } from '../main/common/contract/index.js';
import { relayCall, type RelayAnswer } from './core-relay.js';
import { resolveAppFile } from './guards/app-files.js';
import { APP_ENTRY, APP_SCHEME } from './guards/app-origin.js';
import { SHELL_CSP } from './guards/csp.js';
import { isTrustedSender } from './guards/ipc-sender.js';
import { isAllowedNavigation, windowOpenDecision } from './guards/navigation.js';
import { decidePermission } from './guards/permissions.js';
import { secureWebPreferences } from './guards/web-preferences.js';
import { CALL_CHANNEL, SIGNAL_CHANNEL } from './ipc-channels.js';

const RENDERER_DIR = resolve(import.meta.dirname, '..', 'renderer');
const PRELOAD = join(import.meta.dirname, 'preload.cjs');

protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true } }]);
app.enableSandbox();

let consoleContents: WebContents | undefined;
let coreLink: Promise<ManagerClient> | undefined;

// One D-Bus connection, made on first use, with every signal of the contract forwarded to the
// window (payloads checked by the client, and again by the renderer); a failed connection is
// retried on the next call.
function core(): Promise<ManagerClient> {
  coreLink ??= ManagerClient.connect()
    .then(async (client) => {
      for (const name of Object.keys(Signals) as SignalName[]) {
        await client.onSignal(name, (payload) => consoleContents?.send(SIGNAL_CHANNEL, name, payload));
      }
      return client;
    })
    .catch((e: unknown) => {
      coreLink = undefined;
      throw e;
    });
  return coreLink;
}

// The CLI's witness, run by this process of the user each time the console asks (relay-local
// method `Witness`): same store, same host identity, same OP_DBUS_WITNESS=off.
const witness = witnessReporter(core);

function serveAppFiles(): void {
  protocol.handle(APP_SCHEME, async (request) => {
    const target = resolveAppFile(request.url, RENDERER_DIR);
    if (target === undefined) return new Response('Not found', { status: 404 });
    try {
      const body = await readFile(target.file);
      return new Response(body, {
        headers: {
          'Content-Type': target.contentType,
          'Content-Security-Policy': SHELL_CSP,
          'X-Content-Type-Options': 'nosniff',
        },
      });
    } catch {
      return new Response('Not found', { status: 404 });
    }
  });
}

function lockDownSessions(): void {
  session.defaultSession.setPermissionRequestHandler((_contents, permission, callback) =>
    callback(decidePermission(permission)),
  );
  session.defaultSession.setPermissionCheckHandler((_contents, permission) => decidePermission(permission));
  app.on('web-contents-created', (_event, contents) => {
    contents.setWindowOpenHandler(windowOpenDecision);
    contents.on('will-navigate', (e, url) => {
      if (!isAllowedNavigation(url)) e.preventDefault();
    });
    contents.on('will-redirect', (e, url) => {
      if (!isAllowedNavigation(url)) e.preventDefault();
    });
    contents.on('will-attach-webview', (e) => e.preventDefault());
  });
}

function relayIpc(): void {
  ipcMain.handle(
    CALL_CHANNEL,
    async (event: IpcMainInvokeEvent, method: unknown, request: unknown): Promise<RelayAnswer> => {
      const frame = event.senderFrame;
      const trusted = isTrustedSender(
        {
          frameUrl: frame?.url,
          isMainFrame: frame !== null && frame === event.sender.mainFrame,
          webContentsId: event.sender.id,
        },
        consoleContents?.id,
      );
      if (!trusted)
        return { error: { code: 'NotAuthorized', message: 'this IPC sender is not the console window' } };
      return relayCall(core, method, request, {
        witness,
        verifyInclusion: async (seq) => verifyEntryInclusion(await core(), witness, seq),
      });
    },
  );
}

async function openConsoleWindow(): Promise<void> {
  // The linter reads only literal webPreferences; these come from guards/web-preferences.ts, whose
  // unit test pins contextIsolation, sandbox and the disabled Auxclick feature. The disable
  // directive must share the line the linter reports, hence prettier-ignore.
  // prettier-ignore
  const win = new BrowserWindow({ // eng-disable CONTEXT_ISOLATION_JS_CHECK SANDBOX_JS_CHECK AUXCLICK_JS_CHECK
    width: 1400,
    height: 900,
    title: 'operation-dbus console',
    show: false,
    webPreferences: secureWebPreferences(PRELOAD),
  });
  consoleContents = win.webContents;
  win.once('ready-to-show', () => win.show());
  win.on('closed', () => (consoleContents = undefined));
  await win.loadURL(APP_ENTRY);
  // connect early; when the core is not there, the console shows why on its first call
  void core().catch(() => undefined);
}

await app.whenReady();
lockDownSessions();
serveAppFiles();
relayIpc();
await openConsoleWindow();
app.on('window-all-closed', () => {
  void core()
    .then((c) => c.close())
    .catch(() => undefined)
    .finally(() => app.quit());
});
