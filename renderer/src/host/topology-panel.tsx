import { useMemo } from 'react';
import type { TopologyResponse } from '../../../main/common/contract/index.js';
import { useTopology } from '../core/core-queries.js';
import { ErrorNotice } from '../shell/error-notice.js';
import { formatCount } from './host-format.js';
import { topologyLayout, type DistanceMatrix } from './topology-layout.js';

/** The host's CPU, cache and NUMA topology as the core read it from sysfs, asked for once. */
export function TopologyPanel() {
  const topology = useTopology();
  return (
    <div className="panel host-topology" data-testid="topology">
      <div className="panel-head">CPU, cache and NUMA topology</div>
      <ErrorNotice error={topology.error} title="Could not read the host's topology" />
      {topology.isPending && <div className="panel-empty">Asking the core for the topology…</div>}
      {topology.data !== undefined && <TopologyView topology={topology.data} />}
    </div>
  );
}

/** The topology itself (no data fetching: the unit tests render it from fixtures). */
export function TopologyView({ topology }: { topology: TopologyResponse }) {
  const layout = useMemo(() => topologyLayout(topology), [topology]);
  const { counts } = layout;
  return (
    <>
      <dl className="topo-counts">
        <Count label="NUMA nodes" value={formatCount(counts.nodes)} testId="topology-nodes" />
        <Count label="Packages" value={formatCount(counts.packages)} testId="topology-packages" />
        <Count label="Cores" value={formatCount(counts.cores)} testId="topology-cores" />
        <Count label="CPUs online" value={formatCount(counts.cpus)} testId="topology-cpus" />
        <Count label="Threads per core" value={counts.threadsPerCore} testId="topology-threads" />
        <Count
          label="Offline CPUs"
          value={layout.offline ?? 'none'}
          testId="topology-offline"
          mono={layout.offline !== null}
        />
      </dl>
      <div className="topo-grid">
        <section className="topo-section" aria-label="NUMA nodes">
          <h3>NUMA nodes</h3>
          <div className="topo-scroll">
            <table className="topo-table">
              <thead>
                <tr>
                  <th>Node</th>
                  <th>CPUs</th>
                  <th className="num">Count</th>
                  <th className="num">Memory</th>
                </tr>
              </thead>
              <tbody>
                {layout.nodes.map((n) => (
                  <tr key={n.id} data-testid="topology-node" data-node={n.id}>
                    <td className="mono">{n.id}</td>
                    <td className="topo-cpulist">
                      {n.cpuCount > 0 ? (
                        <code data-testid={`topology-node-${n.id}-cpus`}>{n.cpuList}</code>
                      ) : (
                        <span className="muted" data-testid={`topology-node-${n.id}-cpus`}>
                          no CPUs
                        </span>
                      )}
                    </td>
                    <td className="num">{n.cpuCount}</td>
                    <td className="num">{n.memory}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
        {layout.distances !== null && <Distances matrix={layout.distances} />}
        <section className="topo-section" aria-label="Caches">
          <h3>Caches</h3>
          {layout.caches.length === 0 ? (
            <div className="panel-empty">No caches under /sys/devices/system/cpu/cpu*/cache.</div>
          ) : (
            <div className="topo-scroll">
              <table className="topo-table">
                <thead>
                  <tr>
                    <th>Cache</th>
                    <th className="num">Size</th>
                    <th>Shared by</th>
                    <th className="num">Instances</th>
                  </tr>
                </thead>
                <tbody>
                  {layout.caches.map((c) => (
                    <tr key={c.key} data-testid="topology-cache" data-name={c.name}>
                      <td className="mono strong">{c.name}</td>
                      <td className="num">{c.size}</td>
                      <td>{c.sharedBy}</td>
                      <td className="num">×{formatCount(c.instances)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
      </div>
      {layout.warnings.length > 0 && (
        <details className="topo-warnings" data-testid="topology-warnings">
          <summary>
            {layout.warnings.length} {layout.warnings.length === 1 ? 'warning' : 'warnings'} from the topology
            reader
          </summary>
          <ul>
            {layout.warnings.map((w, i) => (
              <li key={i}>{w}</li>
            ))}
          </ul>
        </details>
      )}
    </>
  );
}

function Count({
  label,
  value,
  testId,
  mono = false,
}: {
  label: string;
  value: string;
  testId: string;
  mono?: boolean;
}) {
  return (
    <div className="topo-count">
      <dt>{label}</dt>
      <dd data-testid={testId} className={mono ? 'mono' : undefined}>
        {value}
      </dd>
    </div>
  );
}

function Distances({ matrix }: { matrix: DistanceMatrix }) {
  return (
    <section className="topo-section" aria-label="Node distances">
      <h3>Node distances</h3>
      <div className="topo-scroll">
        <table
          className={matrix.dense ? 'topo-distances dense' : 'topo-distances'}
          data-testid="topology-distances"
          data-nodes={matrix.ids.length}
        >
          <thead>
            <tr>
              <th className="corner" aria-label="from node \ to node" />
              {matrix.ids.map((id) => (
                <th key={id} scope="col">
                  {id}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {matrix.rows.map((row) => (
              <tr key={row.id}>
                <th scope="row">{row.id}</th>
                {row.cells.map((cell, j) => (
                  <td
                    key={matrix.ids[j] ?? j}
                    className={cell.local ? 'local' : undefined}
                    style={
                      cell.local || cell.text === '?'
                        ? undefined
                        : { backgroundColor: `rgba(37, 99, 201, ${(0.08 + cell.shade * 0.32).toFixed(3)})` }
                    }
                  >
                    {cell.text}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p className="topo-note muted">
        Relative access cost from the row&apos;s node to the column&apos;s (the kernel&apos;s SLIT values; 10
        is local).
      </p>
    </section>
  );
}
