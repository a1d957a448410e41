import { useQuery } from '@tanstack/react-query';
import { useEffect, useMemo, useState } from 'react';
import { useCore } from '../core/core-context.js';
import { ErrorNotice } from '../shell/error-notice.js';
import { useConsoleStore } from '../state/console-store.js';
import { hostGraph, type GraphNode } from './host-graph.js';

const W = 128;
const H = 46;

/**
 * The host as a picture: containers on their bridges, ports, policies, the WireGuard mesh, from
 * the plugins' current state (read again on focus and after each apply), with the current plan's changes marked. A node is
 * a button: it opens its resource in the editor or the plan.
 */
export function HostGraphPanel() {
  const core = useCore();
  const state = useQuery({
    queryKey: ['host-graph-state'],
    queryFn: () => core.call('Query', {}),
    // every Query is an audit entry: read again when the window regains focus or an apply ended, not on a timer
    refetchInterval: false,
  });
  const plan = useConsoleStore((s) => s.plan);
  const applied = useConsoleStore((s) => s.applyResult);
  const refetch = state.refetch;
  useEffect(() => {
    if (applied !== undefined) void refetch();
  }, [applied, refetch]);
  const focusResource = useConsoleStore((s) => s.focusResource);
  const graph = useMemo(() => hostGraph(state.data, plan), [state.data, plan]);
  const [picked, setPicked] = useState<GraphNode | undefined>(undefined);
  const centre = (id: string): { x: number; y: number } => {
    const n = graph.nodes.find((x) => x.id === id);
    return { x: (n?.x ?? 0) + W / 2, y: (n?.y ?? 0) + H / 2 };
  };
  return (
    <div className="panel host-graph" data-testid="host-graph">
      <div className="panel-head">
        The host: containers, bridges, policies and the mesh{' '}
        <span className="muted">
          · from the plugins&apos; current state
          {plan !== undefined && plan.hasChanges ? '; the plan’s changes marked' : ''}
        </span>
      </div>
      <ErrorNotice error={state.error} title="Could not read the plugins' state" />
      {graph.nodes.length === 0 && !state.isPending && (
        <div className="panel-empty">No container, bridge or WireGuard interface on this host yet.</div>
      )}
      {graph.nodes.length > 0 && (
        <div className="graph-scroll">
          <svg
            width={graph.width}
            height={graph.height}
            viewBox={`0 0 ${graph.width} ${graph.height}`}
            role="group"
            aria-label={`Host graph: ${graph.nodes.length} nodes`}
          >
            {graph.edges.map((e) => {
              const a = centre(e.from);
              const b = centre(e.to);
              return (
                <line
                  key={`${e.from}>${e.to}`}
                  className={`graph-edge edge-${e.kind}`}
                  x1={a.x}
                  y1={a.y}
                  x2={b.x}
                  y2={b.y}
                />
              );
            })}
            {graph.nodes.map((n) => (
              <g
                key={n.id}
                transform={`translate(${n.x},${n.y})`}
                className={`graph-node node-${n.kind}${n.change !== undefined ? ` change-${n.change}` : ''}${picked?.id === n.id ? ' picked' : ''}`}
                data-testid="graph-node"
                data-node={n.id}
                data-change={n.change ?? ''}
                role="button"
                tabIndex={0}
                aria-label={`${n.kind} ${n.label}${n.change !== undefined ? `, ${n.change} planned` : ''}${n.policies.length > 0 ? `, policies ${n.policies.join(', ')}` : ''}`}
                onClick={() => setPicked(n)}
                onKeyDown={(e) => {
                  if (e.key === 'Enter' || e.key === ' ') {
                    e.preventDefault();
                    setPicked(n);
                  }
                }}
              >
                <rect width={W} height={H} rx={8} />
                <text x={8} y={18} className="graph-label">
                  {n.label.length > 17 ? `${n.label.slice(0, 16)}…` : n.label}
                </text>
                <text x={8} y={35} className="graph-detail">
                  {(n.change !== undefined ? `${n.change} · ` : '') + (n.state ?? n.kind)}
                  {n.policies.length > 0 ? ` · ⛨ ${n.policies.length}` : ''}
                </text>
              </g>
            ))}
          </svg>
        </div>
      )}
      {picked !== undefined && (
        <div className="graph-detail-card" data-testid="graph-picked" role="region" aria-label="Picked node">
          <strong>
            {picked.kind} {picked.label}
          </strong>
          <span className="muted">
            {picked.plugin}/{picked.resource}
            {picked.detail !== '' ? ` · ${picked.detail}` : ''}
            {picked.policies.length > 0 ? ` · policies: ${picked.policies.join(', ')}` : ''}
          </span>
          <button type="button" onClick={() => focusResource(picked.plugin, picked.resource, 'editor')}>
            Show in the editor
          </button>
          <button
            type="button"
            disabled={plan === undefined}
            onClick={() => focusResource(picked.plugin, picked.resource, 'plan')}
          >
            Show in the plan
          </button>
        </div>
      )}
    </div>
  );
}
