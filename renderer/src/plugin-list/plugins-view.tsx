import type { PluginInfo, PluginsResponse } from '../../../main/common/contract/index.js';
import { usePluginShow, usePlugins } from '../core/core-queries.js';
import { ErrorNotice } from '../shell/error-notice.js';
import { BundlesPanel } from './bundles-panel.js';
import { originOf, permissionText, writableText } from './plugin-rows.js';

/** The plugins the core found through their manifests, in apply order, and what it refused to load. */
export function PluginsView() {
  const plugins = usePlugins();
  const show = usePluginShow();
  const r = plugins.data;
  const bundled = new Set((show.data?.bundles ?? []).map((b) => b.name));
  return (
    <section className="view plugins-view" aria-label="Plugins" tabIndex={0}>
      <div className="toolbar">
        <div className="toolbar-group">
          <span className="host-title">Plugins the core found</span>
          <span className="muted">
            built-in ones and those of OP_DBUS_PLUGIN_PATH, in the order an apply runs them
          </span>
        </div>
      </div>
      <ErrorNotice error={plugins.error} title="Could not list the core's plugins" />
      {plugins.isPending && <div className="panel-empty">Asking the core for its plugins…</div>}
      {r !== undefined && (
        <>
          <PluginTable plugins={r.plugins} bundled={bundled} />
          <RefusedPanel refused={r.refused} />
        </>
      )}
      <BundlesPanel show={show} />
    </section>
  );
}

function PluginTable({ plugins, bundled }: { plugins: PluginInfo[]; bundled: ReadonlySet<string> }) {
  return (
    <div className="panel">
      <div className="panel-head">
        {plugins.length} plugin{plugins.length === 1 ? '' : 's'}
      </div>
      <table className="plugins-table">
        <thead>
          <tr>
            <th>Plugin</th>
            <th>Version</th>
            <th>Source</th>
            <th>Runs</th>
            <th>Changes</th>
            <th>After</th>
            <th>May call on the bus</th>
            <th>Available</th>
            <th>Notes</th>
          </tr>
        </thead>
        <tbody>
          {plugins.map((p) => {
            const origin = originOf(p, bundled);
            const w = writableText(p);
            return (
              <tr
                key={p.name}
                data-testid="plugin-row"
                data-name={p.name}
                data-available={p.available}
                data-source={origin}
                data-writable={w.writable === undefined ? 'unknown' : String(w.writable)}
              >
                <td>
                  <span className="plugin-name">{p.name}</span>
                  {p.description !== undefined && <div className="muted">{p.description}</div>}
                  <div className="muted">deadline {p.deadline_s} s per call</div>
                </td>
                <td className="mono">{p.version}</td>
                <td data-testid="plugin-source">
                  <span className={`badge source-${origin}`}>{origin}</span>
                  {p.service !== undefined && <div className="muted mono">{p.service}</div>}
                  {p.loaded === false && <div className="muted">listed, not loaded</div>}
                </td>
                <td data-testid="plugin-isolation">
                  {p.isolation === 'out-of-process' ? (
                    <span title="its own process, an unprivileged user under bubblewrap, no network">
                      isolated
                    </span>
                  ) : p.isolation === 'in-process' ? (
                    'in the core'
                  ) : (
                    <span className="muted">—</span>
                  )}
                </td>
                <td data-testid="plugin-writable">
                  <span
                    className={
                      w.writable === false ? 'read-only' : w.writable === true ? 'writable' : 'muted'
                    }
                  >
                    {w.text}
                  </span>
                </td>
                <td className="mono" data-testid="plugin-after">
                  {p.after.length > 0 ? p.after.join(', ') : <span className="muted">—</span>}
                </td>
                <td className="permissions">
                  {p.permissions.dbus.length === 0 ? (
                    <span className="muted">nothing</span>
                  ) : (
                    <ul>
                      {p.permissions.dbus.map((perm, i) => (
                        <li key={i}>{permissionText(perm)}</li>
                      ))}
                    </ul>
                  )}
                </td>
                <td data-testid="plugin-availability">
                  {p.available ? (
                    <span className="available">available</span>
                  ) : (
                    <span className="unavailable">
                      unavailable{p.why_not !== undefined && <span className="muted">: {p.why_not}</span>}
                    </span>
                  )}
                </td>
                <td data-testid="plugin-notes">
                  {p.notes.length === 0 ? (
                    <span className="muted">—</span>
                  ) : (
                    p.notes.map((n) => (
                      <div key={n} className="plugin-note">
                        {n}
                      </div>
                    ))
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function RefusedPanel({ refused }: { refused: PluginsResponse['refused'] }) {
  return (
    <div className="panel" data-testid="plugins-refused">
      <div className="panel-head">Not loaded</div>
      {refused.length === 0 ? (
        <div className="panel-empty">The core loaded every plugin directory it was given.</div>
      ) : (
        <ul className="refused-list">
          {refused.map((x) => (
            <li key={`${x.dir} ${x.name ?? ''}`} data-testid="plugin-refused" data-dir={x.dir}>
              <code>{x.dir}</code>
              {x.name !== undefined && <span className="plugin-name"> ({x.name})</span>}:{' '}
              <span>{x.reason}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
