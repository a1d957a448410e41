import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import {
  OpError,
  type ApplyRequest,
  type AuditListRequest,
  type AuditSearchRequest,
  type RequestOf,
  type ResponseOf,
  type Stats,
} from '../../../main/common/contract/index.js';
import { useConsoleStore } from '../state/console-store.js';
import { useCore } from './core-context.js';

const AUDIT = ['audit'] as const;
const DRIFT = ['drift'] as const;
// Mutations invalidate the audit queries without awaiting the refetch: a call is done when the core answers.

/** The composed JSON Schema of the desired-state document. */
export function useDocumentSchemaQuery() {
  const core = useCore();
  return useQuery({ queryKey: ['schema'], queryFn: () => core.call('Schema', {}), staleTime: Infinity });
}

/** Newest audit entries first, filtered as the admin asked. */
export function useAuditList(filter: AuditListRequest) {
  const core = useCore();
  return useQuery({ queryKey: [...AUDIT, 'list', filter], queryFn: () => core.call('AuditList', filter) });
}

/** An audit entry's payload by its hash (asked when its detail is opened; payloads never change). */
export function useAuditPayload(hash: string | null) {
  const core = useCore();
  return useQuery({
    queryKey: [...AUDIT, 'payload', hash],
    queryFn: () => core.call('AuditPayload', { hash: hash ?? '' }),
    enabled: hash !== null,
    staleTime: Infinity,
  });
}

/** Whether the audit chain still verifies end to end. */
export function useAuditVerify() {
  const core = useCore();
  return useQuery({ queryKey: [...AUDIT, 'verify'], queryFn: () => core.call('AuditVerify', {}) });
}

/**
 * The witness's verdict on the core's log, from the relay (the user's process on the workstation).
 * Under the audit key: each refresh of the audit data, and each change the console makes, checks again.
 */
export function useWitness() {
  const core = useCore();
  return useQuery({ queryKey: [...AUDIT, 'witness'], queryFn: () => core.callRelay('Witness', {}) });
}

/** The host's CPU, cache and NUMA topology: read once, it does not change while the console is open. */
export function useTopology() {
  const core = useCore();
  return useQuery({
    queryKey: ['topology'],
    queryFn: () => core.call('Topology', {}),
    staleTime: Infinity,
    refetchOnWindowFocus: false,
    refetchOnReconnect: false,
  });
}

const STATS = ['stats'] as const;

/**
 * What the core measures of its host: the first paint from the Stats method, then each Metrics
 * signal replaces it (nobody polls). `signals` counts the Metrics signals received since mount.
 */
export function useLiveStats() {
  const core = useCore();
  const queries = useQueryClient();
  const [signals, setSignals] = useState(0);
  useEffect(
    () =>
      core.transport.onSignal('Metrics', (s: Stats) => {
        queries.setQueryData(STATS, s);
        setSignals((n) => n + 1);
      }),
    [core, queries],
  );
  const stats = useQuery({
    queryKey: STATS,
    queryFn: async () => {
      const answer = await core.call('Stats', {});
      // a Metrics signal that arrived while Stats was on its way is the newer measurement
      const pushed = queries.getQueryData<Stats>(STATS);
      return pushed !== undefined && pushed.time > answer.time ? pushed : answer;
    },
    staleTime: Infinity,
  });
  return { ...stats, signals };
}

/** Plans the document in the store; on success the plan view opens. */
export function usePlanMutation() {
  const core = useCore();
  const queries = useQueryClient();
  return useMutation({
    mutationFn: (input: { document: string; file: string | undefined }) =>
      core.call('Plan', {
        document: input.document,
        ...(input.file !== undefined ? { file: input.file } : {}),
      }),
    onSuccess: (plan, input) => {
      const store = useConsoleStore.getState();
      store.planned(plan, input.document);
      store.showView('plan');
    },
    onSettled: () => void queries.invalidateQueries({ queryKey: AUDIT }),
  });
}

/** Records the approval of exactly the plan hash on screen. */
export function useApproveMutation() {
  const core = useCore();
  const queries = useQueryClient();
  return useMutation({
    mutationFn: (input: { planId: string; hash: string }) => core.call('Approve', input),
    onSuccess: (approval) => useConsoleStore.getState().approved(approval),
    onSettled: () => void queries.invalidateQueries({ queryKey: AUDIT }),
  });
}

/**
 * Applies the approved plan (with its irreversible changes confirmed, when it has any); a StalePlan
 * answer marks the plan stale so the view offers a re-plan. Drift is measured against the last
 * applied document, which an apply replaces: it is asked again however the apply ended.
 */
export function useApplyMutation() {
  const core = useCore();
  const queries = useQueryClient();
  return useMutation({
    mutationFn: (input: ApplyRequest) => core.call('Apply', input),
    onSuccess: (result) => useConsoleStore.getState().applied(result),
    onError: (e) => {
      if (e instanceof OpError && e.code === 'StalePlan') useConsoleStore.getState().wentStale(e.message);
    },
    onSettled: () => {
      void queries.invalidateQueries({ queryKey: AUDIT });
      void queries.invalidateQueries({ queryKey: DRIFT });
    },
  });
}

/** Asks the core to stop the running apply of a plan between two steps; the apply then rolls back. */
export function useCancelMutation() {
  const core = useCore();
  return useMutation({ mutationFn: (planId: string) => core.call('Cancel', { planId }) });
}

/**
 * The host against the last applied document, apart from any plan. Each answer is an audit entry,
 * so it is asked when the console opens, on Refresh and after an apply or converge, never on focus.
 */
export function useDrift() {
  const core = useCore();
  return useQuery({
    queryKey: DRIFT,
    queryFn: () => core.call('Drift', {}),
    staleTime: Infinity,
    refetchOnWindowFocus: false,
    refetchOnReconnect: false,
  });
}

/** Re-applies the last applied document (or, as a dry run, plans it); a real one refreshes drift. */
export function useConvergeMutation() {
  const core = useCore();
  const queries = useQueryClient();
  return useMutation({
    mutationFn: (input: RequestOf<'Converge'>) => core.call('Converge', input),
    onSettled: (_r, _e, input) => {
      void queries.invalidateQueries({ queryKey: AUDIT });
      if (input.dryRun !== true) void queries.invalidateQueries({ queryKey: DRIFT });
    },
  });
}

/** The plugins the core found through their manifests; they change only when the core restarts. */
export function usePlugins() {
  const core = useCore();
  return useQuery({ queryKey: ['plugins'], queryFn: () => core.call('Plugins', {}) });
}

/** The host's current state, to start a document from it. */
export function useHostStateMutation() {
  const core = useCore();
  return useMutation({ mutationFn: () => core.call('Query', {}) });
}

const PLUGIN_SHOW = ['plugin-show'] as const;

/**
 * The plugins installed from signed bundles: every version, its signer and hash, which is active.
 * PluginShow needs org.opdbus.manage-plugins: a user without it sees the core's refusal.
 */
export function usePluginShow() {
  const core = useCore();
  return useQuery({
    queryKey: PLUGIN_SHOW,
    queryFn: () => core.call('PluginShow', {}),
    retry: false,
    refetchOnWindowFocus: false,
  });
}

/** Switches a bundle plugin back to its previous version; the plugin list and the audit log are asked again. */
export function usePluginRollbackMutation() {
  const core = useCore();
  const queries = useQueryClient();
  return useMutation({
    mutationFn: (name: string) => core.call('PluginRollback', { name }),
    onSuccess: (r) => {
      queries.setQueryData(PLUGIN_SHOW, (old: ResponseOf<'PluginShow'> | undefined) =>
        old === undefined
          ? old
          : { ...old, bundles: old.bundles.map((b) => (b.name === r.name ? r.bundle : b)) },
      );
    },
    onSettled: () => {
      void queries.invalidateQueries({ queryKey: PLUGIN_SHOW });
      void queries.invalidateQueries({ queryKey: ['plugins'] });
      void queries.invalidateQueries({ queryKey: AUDIT });
    },
  });
}

/** The hybrid (BM25 + embedding) search of the audit log; asked when the admin submits the box. */
export function useAuditSearch(request: AuditSearchRequest | undefined) {
  const core = useCore();
  return useQuery({
    queryKey: [...AUDIT, 'search', request],
    queryFn: () => core.call('AuditSearch', request as AuditSearchRequest),
    enabled: request !== undefined,
    refetchOnWindowFocus: false,
  });
}

/**
 * The embedder in use and the background re-embedding after a model change: asked each second
 * while a re-embed runs, and kept fresh by the Metrics signal's embedding part in between.
 */
export function useModelInfo() {
  const core = useCore();
  const queries = useQueryClient();
  useEffect(
    () =>
      core.transport.onSignal('Metrics', (s: Stats) => {
        if (s.embedding !== undefined) queries.setQueryData(MODEL_INFO, s.embedding);
      }),
    [core, queries],
  );
  return useQuery({
    queryKey: MODEL_INFO,
    queryFn: () => core.call('ModelInfo', {}),
    refetchOnWindowFocus: false,
    refetchInterval: (q) => (q.state.data?.reembed.state === 'running' ? 1000 : false),
  });
}
const MODEL_INFO = ['model-info'] as const;
