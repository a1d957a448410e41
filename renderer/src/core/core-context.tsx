import { createContext, useContext, useSyncExternalStore, type ReactNode } from 'react';
import type { TransportStatus } from '../transport/transport.js';
import type { CoreClient } from './core-client.js';

const CoreContext = createContext<CoreClient | undefined>(undefined);

export function CoreProvider({ client, children }: { client: CoreClient; children: ReactNode }) {
  return <CoreContext.Provider value={client}>{children}</CoreContext.Provider>;
}

/** The core client of this console window. */
export function useCore(): CoreClient {
  const client = useContext(CoreContext);
  if (client === undefined) throw new Error('useCore outside CoreProvider');
  return client;
}

/** The transport's connection state, re-rendering when it changes. */
export function useTransportStatus(): TransportStatus {
  const { transport } = useCore();
  return useSyncExternalStore(
    (notify) => transport.onStatus(notify),
    () => transport.status(),
  );
}
