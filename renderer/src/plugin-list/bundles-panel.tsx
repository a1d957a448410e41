import type { InstalledBundle, PluginShowResponse } from '../../../main/common/contract/index.js';
import { readableError } from '../core/core-client.js';
import { usePluginRollbackMutation, type usePluginShow } from '../core/core-queries.js';
import { ErrorNotice } from '../shell/error-notice.js';
import { rollbackSentence, shortHash } from './plugin-rows.js';

/**
 * The plugins installed from signed bundles (PluginShow): each installed version with its signer
 * and hash, which one is active and which a rollback returns to, and a Rollback per plugin.
 */
export function BundlesPanel({ show }: { show: ReturnType<typeof usePluginShow> }) {
  const r = show.data;
  return (
    <div className="panel" data-testid="bundles-panel">
      <div className="panel-head">Installed from signed bundles</div>
      {show.isPending && <div className="panel-empty">Asking the core for its installed bundles…</div>}
      {show.error !== null && (
        <ErrorNotice
          error={show.error}
          title={
            readableError(show.error).code === 'NotAuthorized'
              ? 'Installed bundles are shown only to users allowed to manage plugins (org.opdbus.manage-plugins)'
              : 'Could not read the installed bundles'
          }
        />
      )}
      {r !== undefined && (
        <>
          <TrustedKeys show={r} />
          {r.bundles.length === 0 ? (
            <div className="panel-empty">
              No plugin is installed from a bundle. Install one with <code>op-dbus plugin install FILE</code>.
            </div>
          ) : (
            r.bundles.map((b) => <BundleCard key={b.name} bundle={b} />)
          )}
        </>
      )}
    </div>
  );
}

function TrustedKeys({ show }: { show: PluginShowResponse }) {
  const k = show.trustedKeys;
  return (
    <div className="panel-note bundle-trust" data-testid="trusted-keys">
      Versions are stored as{' '}
      {show.storage === 'btrfs' ? 'read-only BTRFS subvolumes' : 'plain read-only directories'}. Trusted
      signing keys in <code>{k.dir}</code>:{' '}
      {k.keys.length === 0
        ? 'none (no bundle can be installed)'
        : k.keys.map((key) => (
            <span key={key.fingerprint} className="trusted-key" title={key.fingerprint}>
              <code>{key.file}</code> ({shortHash(key.fingerprint)})
            </span>
          ))}
      {k.ignored.length > 0 && (
        <span className="muted">
          {' '}
          · not taken: {k.ignored.map((i) => `${i.file} (${i.reason})`).join('; ')}
        </span>
      )}
    </div>
  );
}

function BundleCard({ bundle }: { bundle: InstalledBundle }) {
  const rollback = usePluginRollbackMutation();
  const versionOf = (hash: string): string | undefined =>
    bundle.versions.find((v) => v.hash === hash)?.version;
  const previous = bundle.previous !== null ? versionOf(bundle.previous) : undefined;
  return (
    <div className="bundle" data-testid="bundle" data-name={bundle.name}>
      <div className="bundle-head">
        <span className="plugin-name">{bundle.name}</span>
        <span className="muted">
          {bundle.versions.length} version{bundle.versions.length === 1 ? '' : 's'} installed ·{' '}
          {bundle.storage === 'btrfs' ? 'BTRFS snapshots' : 'plain directories'}
        </span>
        <button
          type="button"
          className="head-button"
          data-testid="bundle-rollback"
          aria-label={`Roll ${bundle.name} back to its previous version`}
          disabled={bundle.previous === null || rollback.isPending}
          title={bundle.previous === null ? 'no previous version to return to' : undefined}
          onClick={() => rollback.mutate(bundle.name)}
        >
          {rollback.isPending
            ? 'Rolling back…'
            : bundle.previous === null
              ? 'Rollback (no previous version)'
              : `Rollback to ${previous ?? shortHash(bundle.previous)}`}
        </button>
      </div>
      <table className="plugins-table bundle-versions">
        <thead>
          <tr>
            <th>Version</th>
            <th>Hash (manifest SHA-256)</th>
            <th>Signer</th>
            <th>Installed</th>
            <th>Stored as</th>
            <th>State</th>
          </tr>
        </thead>
        <tbody>
          {bundle.versions.map((v) => (
            <tr
              key={v.hash}
              data-testid="bundle-version"
              data-hash={v.hash}
              data-version={v.version}
              data-active={v.active}
              data-previous={v.previous}
            >
              <td className="mono">{v.version}</td>
              <td className="mono" title={v.hash}>
                {shortHash(v.hash)}
              </td>
              <td>
                <code title={v.signer}>{v.signerKey}</code>
                <div className="muted mono">{shortHash(v.signer)}</div>
              </td>
              <td>
                {new Date(v.installedAt).toLocaleString()}
                <div className="muted">by {v.installedBy}</div>
              </td>
              <td>
                {v.kind}
                {v.readOnly ? ', read-only' : ', writable'} · {v.files} files, {v.bytes} bytes
              </td>
              <td data-testid="bundle-state">
                {v.active ? (
                  <span className="badge version-active">active</span>
                ) : v.previous ? (
                  <span className="badge version-previous">previous (rollback returns here)</span>
                ) : (
                  <span className="muted">kept</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <ErrorNotice error={rollback.error} title={`Not rolled back: ${bundle.name}`} />
      {rollback.data !== undefined && (
        <div className="notice notice-success" role="status" data-testid="rollback-result">
          <strong>Rolled back.</strong>
          <span className="notice-text">{rollbackSentence(rollback.data, versionOf)}</span>
        </div>
      )}
    </div>
  );
}
