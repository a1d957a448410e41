import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import { describeAuditMechanics, type Stats } from '../../../main/common/contract/index.js';
import { useLiveStats } from '../core/core-queries.js';
import { ErrorNotice } from '../shell/error-notice.js';
import {
  formatBytes,
  formatCount,
  formatCpuList,
  formatKb,
  formatPercent,
  nodeMemory,
  residency,
} from './host-format.js';
import { HostGraphPanel } from './host-graph-panel.js';
import { MetricsChart } from './metrics-chart.js';
import { EMBEDDING_SERIES, HOST_SERIES, MetricsHistory } from './metrics-history.js';
import { TopologyPanel } from './topology-panel.js';

/**
 * The live NUMA / page-cache panel: what the core measured on its host, first from the Stats
 * method, then from each Metrics signal, and the host's topology (read once). Measurements only;
 * no speedup is claimed (DESIGN.md section 7).
 */
export function HostView() {
  const stats = useLiveStats();
  const s = stats.data;
  const history = useRef(new MetricsHistory(HOST_SERIES));
  const embedding = useRef(new MetricsHistory(EMBEDDING_SERIES));
  const [version, setVersion] = useState(0);
  useEffect(() => {
    if (s !== undefined && history.current.push(s)) {
      embedding.current.push(s);
      setVersion((v) => v + 1);
    }
  }, [s]);
  const data = useCallback(() => history.current.data(), []);
  const embeddingData = useCallback(() => embedding.current.data(), []);
  return (
    // focusable: the view scrolls, and a keyboard user must be able to scroll it (WCAG 2.1.1)
    <section className="view host-view" aria-label="Host" tabIndex={0}>
      <div className="toolbar">
        <div className="toolbar-group">
          <span className="host-title">Measured on this host by the core</span>
          <span className="muted">
            what the kernel reported at the time shown; no benchmark, no claimed speedup
          </span>
        </div>
        {s !== undefined && (
          <div
            className="toolbar-group live"
            data-testid="host-measured"
            data-time={s.time}
            data-signals={stats.signals}
          >
            <span className={`live-dot ${stats.signals > 0 ? 'on' : ''}`} aria-hidden />
            {stats.signals > 0 ? 'Live' : 'Waiting for the first Metrics signal'} · measured{' '}
            <time dateTime={s.time}>{new Date(s.time).toLocaleTimeString()}</time>
            <span className="muted">
              · {stats.signals} {stats.signals === 1 ? 'update' : 'updates'} received
            </span>
          </div>
        )}
      </div>
      <ErrorNotice error={stats.error} title="Could not read the core's measurements" />
      {stats.isPending && <div className="panel-empty">Asking the core for its measurements…</div>}
      <div className="host-grid">
        <HostGraphPanel />
        {s !== undefined && (
          <>
            <div className="panel host-charts" data-testid="host-charts">
              <div className="panel-head">
                Over time <span className="muted">· the last {history.current.length} measurements</span>
              </div>
              <div className="chart-grid">
                {HOST_SERIES.map((m, i) => (
                  <MetricsChart key={m.key} series={m} index={i + 1} data={data} version={version} />
                ))}
              </div>
            </div>
            <div className="panel host-charts" data-testid="embedding-charts">
              <div className="panel-head">
                Embedding cache and embedder{' '}
                <span className="muted">
                  ·{' '}
                  {s.embedding === undefined
                    ? 'nothing embedded yet: the charts start with the first audit entry the core embeds'
                    : `${s.embedding.model.name}: ${s.embedding.model.label} (${s.embedding.model.dims} dimensions)`}
                </span>
              </div>
              {s.embedding !== undefined && (
                <div className="chart-grid">
                  {EMBEDDING_SERIES.map((m, i) => (
                    <MetricsChart
                      key={m.key}
                      series={m}
                      index={i + 1}
                      data={embeddingData}
                      version={version}
                    />
                  ))}
                </div>
              )}
            </div>
            <MemoryPanel nodes={s.nodes} />
            <CorePanel core={s.core} storage={s.storage} audit={s.audit} />
            <PlacementPanel placement={s.placement} />
            <FilesPanel files={s.files} />
          </>
        )}
        {/* the topology is its own query: it shows even when the measurements cannot be read */}
        <TopologyPanel />
      </div>
    </section>
  );
}

function Bar({ fraction, label, tone }: { fraction: number; label: string; tone: 'memory' | 'cache' }) {
  return (
    <div
      className={`bar bar-${tone}`}
      role="meter"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={Math.round(fraction * 1000) / 10}
    >
      <div className="bar-fill" style={{ width: `${fraction * 100}%` }} />
    </div>
  );
}

function MemoryPanel({ nodes }: { nodes: Stats['nodes'] }) {
  return (
    <div className="panel host-memory">
      <div className="panel-head">Memory per NUMA node</div>
      {nodes.length === 0 && (
        <div className="panel-empty">
          Unavailable: the core found no NUMA nodes under /sys/devices/system/node.
        </div>
      )}
      <ul className="host-rows">
        {nodes.map((n) => {
          const m = nodeMemory(n);
          return (
            <li key={n.id} data-testid={`node-${n.id}`}>
              <div className="row-head">
                <span className="row-name">node {n.id}</span>
                <span>
                  <strong>{formatKb(n.free_kb)}</strong> free of <strong>{formatKb(n.total_kb)}</strong>
                  <span className="muted"> · {formatPercent(m.usedFraction)} in use</span>
                </span>
              </div>
              <Bar fraction={m.usedFraction} label={`node ${n.id} memory in use`} tone="memory" />
              <div className="row-foot muted">
                MemTotal <span data-testid={`node-${n.id}-total-kb`}>{formatCount(n.total_kb)} kB</span> ·
                MemFree <span data-testid={`node-${n.id}-free-kb`}>{formatCount(n.free_kb)} kB</span>
              </div>
            </li>
          );
        })}
      </ul>
    </div>
  );
}

function Field({ label, children, testId }: { label: string; children: ReactNode; testId?: string }) {
  return (
    <>
      <dt>{label}</dt>
      <dd data-testid={testId}>{children}</dd>
    </>
  );
}

/** "unavailable", with the reason unless a note nearby already gives it. */
function Unavailable({ reason }: { reason?: string }) {
  return (
    <span className="unavailable">
      unavailable{reason !== undefined && <span className="muted"> ({reason})</span>}
    </span>
  );
}

function CorePanel({
  core,
  storage,
  audit,
}: {
  core: Stats['core'];
  storage: Stats['storage'];
  audit: Stats['audit'];
}) {
  // without the native addon, CPU, node and affinity are all unknown for one reason: say it once
  const native = core.unavailable;
  const measuredOr = (value: ReactNode, missing: boolean, syscall: string) =>
    native !== undefined ? (
      <Unavailable />
    ) : missing ? (
      <Unavailable reason={`${syscall} gave no answer`} />
    ) : (
      value
    );
  return (
    <div className="panel">
      <div className="panel-head">The core process</div>
      <dl className="fields">
        <Field label="PID">{core.pid}</Field>
        <Field label="Resident memory">{formatKb(core.rss_kb)}</Field>
        <Field label="Running on CPU" testId="core-cpu">
          {measuredOr(core.cpu, core.cpu === null, 'getcpu')}
        </Field>
        <Field label="NUMA node" testId="core-node">
          {measuredOr(core.node, core.node === null, 'getcpu')}
        </Field>
        <Field label="Allowed CPUs" testId="core-affinity">
          {measuredOr(
            <code>{formatCpuList(core.affinity ?? [])}</code>,
            core.affinity === null,
            'sched_getaffinity',
          )}
        </Field>
        <Field label="Storage" testId="storage">
          {storage.mode === 'btrfs' ? 'BTRFS subvolumes' : 'plain directories'}{' '}
          <span className="muted">on {storage.filesystem}</span>
        </Field>
        {audit !== undefined && (
          <Field label="Audit log" testId="audit-mechanics">
            {describeAuditMechanics(audit)}
          </Field>
        )}
      </dl>
      {native !== undefined && (
        <p className="panel-note" data-testid="core-unavailable">
          CPU, node and allowed CPUs are not measured: {native}
        </p>
      )}
    </div>
  );
}

function PlacementPanel({ placement }: { placement: Stats['placement'] }) {
  return (
    <div className="panel">
      <div className="panel-head">Placement decision</div>
      <div className="placement" data-testid="placement">
        <div className={`placement-verdict ${placement.enabled ? 'pinned' : 'unpinned'}`}>
          {placement.enabled
            ? `Pinned to node ${placement.node ?? '?'}, CPUs ${formatCpuList(placement.cpus)}`
            : 'Not pinned'}
        </div>
        <p className="placement-reason">{placement.reason}</p>
      </div>
    </div>
  );
}

function FilesPanel({ files }: { files: Stats['files'] }) {
  const reasons = new Set(files.map((f) => residency(f)).flatMap((r) => (r.measured ? [] : [r.reason])));
  const shared = files.length > 1 && reasons.size === 1 && files.every((f) => f.resident === null);
  const sharedReason = shared ? [...reasons][0] : undefined;
  return (
    <div className="panel host-files">
      <div className="panel-head">Page-cache residency of the core's files</div>
      {sharedReason !== undefined && (
        <p className="panel-note" data-testid="files-unavailable">
          Residency is not measured: {sharedReason}
        </p>
      )}
      {files.length === 0 ? (
        <div className="panel-empty">The core has no audit or cache files yet.</div>
      ) : (
        <table className="files-table">
          <thead>
            <tr>
              <th>File</th>
              <th className="num">Size</th>
              <th>In the page cache</th>
            </tr>
          </thead>
          <tbody>
            {files.map((f) => {
              const r = residency(f);
              return (
                <tr key={f.name} data-testid="cache-file" data-name={f.name}>
                  <td className="file-name-cell">
                    <code>{f.name}</code>
                  </td>
                  <td className="num">{formatBytes(f.bytes)}</td>
                  <td className="residency">
                    {r.measured ? (
                      <div className="residency-cell">
                        <Bar fraction={r.fraction} label={`${f.name} resident`} tone="cache" />
                        <span className="residency-label">
                          {r.label}
                          <span className="muted"> · {formatBytes(r.residentBytes)}</span>
                        </span>
                      </div>
                    ) : (
                      <Unavailable {...(shared ? {} : { reason: r.reason })} />
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}
