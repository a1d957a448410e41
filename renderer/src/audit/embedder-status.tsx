import { useModelInfo } from '../core/core-queries.js';
import { ErrorNotice } from '../shell/error-notice.js';
import { embedderLine, reembedState } from './reembed.js';

/**
 * Which embedder the search's meaning part uses, and after a model change (`op-dbus model use`)
 * the background re-embedding's progress, from ModelInfo and the Metrics stream.
 */
export function EmbedderStatus() {
  const info = useModelInfo();
  const d = info.data;
  if (info.error !== null)
    return <ErrorNotice error={info.error} title="Could not ask which embedder runs" />;
  if (d === undefined) return null;
  const r = reembedState(d.reembed, (id) => (id === d.model.id ? d.model.name : `model ${id.slice(0, 12)}`));
  return (
    <div className="embedder-status" data-testid="embedder-status" data-model={d.model.name}>
      <div data-testid="embedder-model">
        <span className="muted">Embedder in use · </span>
        {embedderLine(d.model)}
      </div>
      {r !== undefined && (
        <div
          className={`reembed reembed-${r.tone}`}
          data-testid="reembed-progress"
          data-state={d.reembed.state}
          data-done={d.reembed.done}
          data-total={d.reembed.total}
          role="status"
        >
          <progress
            max={1}
            value={r.fraction}
            aria-label={`re-embedding progress, ${d.reembed.done} of ${d.reembed.total}`}
          />
          <span>{r.text}</span>
        </div>
      )}
    </div>
  );
}
