import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './app.js';
import { CoreClient } from './core/core-client.js';
import { CoreProvider } from './core/core-context.js';
import './editor/monaco-setup.js';
import { ElectronTransport, type ConsoleBridge } from './transport/electron-transport.js';
import type { Transport } from './transport/transport.js';
import { relayProtocols, takeSessionSecret, WebSocketTransport } from './transport/websocket-transport.js';
import './styles.css';

/** The Electron preload exposes a bridge; in a browser the console talks to `op-dbus serve`. */
function chooseTransport(): Transport {
  const bridge = (window as { opdbus?: ConsoleBridge }).opdbus;
  if (bridge !== undefined) return new ElectronTransport(bridge);
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const protocols = relayProtocols(takeSessionSecret(window));
  return new WebSocketTransport(() => new WebSocket(`${scheme}://${location.host}/ws`, protocols));
}

// Errors are shown at once with their message; retrying a refused or invalid call only delays that.
const queries = new QueryClient({
  defaultOptions: { queries: { retry: false, refetchOnWindowFocus: false } },
});
const root = document.getElementById('root');
if (root === null) throw new Error('index.html has no #root');

createRoot(root).render(
  <StrictMode>
    <CoreProvider client={new CoreClient(chooseTransport())}>
      <QueryClientProvider client={queries}>
        <App />
      </QueryClientProvider>
    </CoreProvider>
  </StrictMode>,
);
