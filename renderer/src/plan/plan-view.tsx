import { DiffEditor } from '@monaco-editor/react';
import { useEffect, useMemo, useState } from 'react';
import type { Plan } from '../../../main/common/contract/index.js';
import { usePlanMutation } from '../core/core-queries.js';
import { DriftPanel } from '../drift/drift-panel.js';
import { ErrorNotice } from '../shell/error-notice.js';
import { useConsoleStore } from '../state/console-store.js';
import { ApplyPanel } from './apply-panel.js';
import {
  actionCounts,
  changeRows,
  diffTexts,
  filterRows,
  inApplyOrder,
  resourceProblems,
  type ChangeRow,
} from './plan-rows.js';

/**
 * The plan: what changes per plugin and resource, the diff current → desired, approval and apply;
 * below it, on its own, the host's drift from the last applied plan.
 */
export function PlanView() {
  const plan = useConsoleStore((s) => s.plan);
  const outdated = useConsoleStore((s) => s.plan !== undefined && s.plannedDocument !== s.document);
  const replan = usePlanMutation();

  if (plan === undefined) {
    return (
      <section className="view plan-view empty" aria-label="Plan">
        <div className="empty-state">
          <h2>No plan yet</h2>
          <p>Write the desired state in the editor and press Plan (Ctrl+Enter).</p>
        </div>
        <DriftPanel />
      </section>
    );
  }

  const onReplan = (): void => {
    const s = useConsoleStore.getState();
    replan.mutate({ document: s.documentNow(), file: s.fileName });
  };

  return (
    <section className="view plan-view" aria-label="Plan">
      <PlanSummary plan={plan} />
      {outdated && (
        <div className="notice notice-warning" role="status" data-testid="plan-outdated">
          <strong>The document changed since this plan was made.</strong>
          <span className="notice-text">Approve is disabled until you plan the current document.</span>
          <button type="button" onClick={onReplan} disabled={replan.isPending}>
            Plan again
          </button>
        </div>
      )}
      <ErrorNotice error={replan.error} title="The core could not plan this document" />
      <ResourceProblems plan={plan} />
      <div className="plan-body">
        <div className="plan-side">
          <ChangeList plan={plan} />
          <ApplyPanel plan={plan} outdated={outdated} onReplan={onReplan} replanning={replan.isPending} />
        </div>
        <PlanDiff plan={plan} />
      </div>
      <DriftPanel />
    </section>
  );
}

/** Resources this host cannot take as written: the apply would stop at the first of them. */
function ResourceProblems({ plan }: { plan: Plan }) {
  const problems = resourceProblems(plan);
  if (problems.length === 0) return null;
  return (
    <div className="notice notice-error resource-problems" role="alert" data-testid="resource-problems">
      <strong>
        {problems.length === 1 ? 'One resource' : `${problems.length} resources`} cannot be applied on this
        host as written; an apply would fail there. Edit the document and plan again.
      </strong>
      <ul className="plan-problems">
        {problems.map((p) => (
          <li
            key={`${p.plugin} ${p.resource}`}
            data-testid="resource-problem"
            data-plugin={p.plugin}
            data-resource={p.resource}
          >
            {p.sentence}
          </li>
        ))}
      </ul>
    </div>
  );
}

function PlanSummary({ plan }: { plan: Plan }) {
  const rows = changeRows(plan);
  const plugins = new Set(rows.map((r) => r.plugin));
  return (
    <div className="plan-summary" data-testid="plan-summary" data-plan-id={plan.id}>
      <div>
        <h2>
          {plan.hasChanges
            ? `${rows.length} change${rows.length === 1 ? '' : 's'} in ${[...plugins].join(', ')}`
            : 'No changes'}
        </h2>
        <div className="muted">
          {plan.hasChanges
            ? 'Applying this plan sets the values below.'
            : 'The host already matches the document.'}{' '}
          Planned {new Date(plan.createdAt).toLocaleString()}
          {plan.file !== undefined ? ` from ${plan.file}` : ''} · audit #{plan.auditSeq}
        </div>
      </div>
      <div className="hash-block">
        <span className="label">Plan hash</span>
        <code data-testid="plan-hash">{plan.hash}</code>
      </div>
    </div>
  );
}

/** Groups longer than this start folded, so a plan of a thousand containers opens readable. */
const FOLD_OVER = 40;

function ChangeList({ plan }: { plan: Plan }) {
  const filter = useConsoleStore((s) => s.planFilter);
  const setFilter = useConsoleStore((s) => s.setPlanFilter);
  const all = useMemo(() => changeRows(plan), [plan]);
  const rows = useMemo(() => filterRows(all, filter), [all, filter]);
  const { byPlugin, irreversible } = inApplyOrder(rows);
  return (
    <div className="panel change-list" data-testid="change-list">
      <div className="panel-head change-list-head">
        <span>Changes, in the order the apply runs them</span>
        {all.length > 0 && (
          <input
            type="search"
            aria-label="Filter changes by plugin, resource, action or value"
            placeholder="Filter…"
            data-testid="change-filter"
            value={filter}
            onChange={(e) => setFilter(e.target.value)}
          />
        )}
      </div>
      {all.length === 0 && <div className="panel-empty">Nothing to change.</div>}
      {all.length > 0 && rows.length === 0 && (
        <div className="panel-empty">
          No change matches “{filter}” ({all.length} in the plan).
        </div>
      )}
      {byPlugin.map(([plugin, pluginRows]) => (
        <ChangeGroup key={`${plugin}:${filter === '' ? '' : 'f'}`} title={plugin} rows={pluginRows} />
      ))}
      {irreversible.length > 0 && (
        <ChangeGroup
          title="Irreversible · run last, after every other change"
          rows={irreversible}
          irreversible
        />
      )}
    </div>
  );
}

interface ChangeGroupProps {
  title: string;
  rows: ChangeRow[];
  /** The group of irreversible changes names each by plugin/resource, as the confirmation does. */
  irreversible?: boolean;
}

function ChangeGroup({ title, rows, irreversible = false }: ChangeGroupProps) {
  // irreversible changes are never folded away: each must be seen before it is confirmed
  const [open, setOpen] = useState(irreversible || rows.length <= FOLD_OVER);
  // a folded group's rows are made when it is opened: a plan of a thousand containers paints its groups first
  return (
    <details
      className={`plugin-changes${irreversible ? ' irreversible-group' : ''}`}
      data-testid={irreversible ? 'irreversible-changes' : `changes-${title}`}
      open={open}
      onToggle={(e) => setOpen(e.currentTarget.open)}
    >
      <summary>
        <h3>{title}</h3> <span className="muted">{actionCounts(rows)}</span>
      </summary>
      {open && (
        <table>
          <tbody>
            {rows.map((r) => (
              <tr key={r.path} data-testid="change-row" data-path={r.path}>
                <td className="resource">
                  <span className={`badge action-${r.action}`}>{r.action}</span>{' '}
                  {irreversible ? `${r.plugin}/${r.resource}` : r.resource}
                  {r.irreversible && <span className="badge irreversible">irreversible</span>}
                </td>
                <td className="values">
                  <span className="before">{r.before}</span>
                  <span className="arrow" aria-label="becomes">
                    →
                  </span>
                  <span className="after">{r.after}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </details>
  );
}

function PlanDiff({ plan }: { plan: Plan }) {
  // the diff (two Monaco models of the whole document) is made after the change list has painted
  const [shownFor, setShownFor] = useState<string | undefined>(undefined);
  useEffect(() => {
    const frame = requestAnimationFrame(() => setTimeout(() => setShownFor(plan.id), 0));
    return () => cancelAnimationFrame(frame);
  }, [plan.id]);
  const ready = shownFor === plan.id;
  const texts = useMemo(() => (ready ? diffTexts(plan) : undefined), [plan, ready]);
  return (
    <div className="panel plan-diff">
      <div className="panel-head diff-head">
        <span>Current (what the document manages)</span>
        <span>Desired</span>
      </div>
      <div className="diff-frame" data-testid="plan-diff">
        {/* a fresh editor per plan: swapping model paths on a live DiffEditor leaves a stale diff */}
        {texts === undefined ? (
          <div className="panel-empty">Preparing the diff…</div>
        ) : (
          <DiffEditor
            key={plan.id}
            original={texts.current}
            modified={texts.desired}
            language="json"
            options={{
              readOnly: true,
              originalEditable: false,
              renderSideBySide: true,
              useInlineViewWhenSpaceIsLimited: false,
              minimap: { enabled: false },
              automaticLayout: true,
              scrollBeyondLastLine: false,
              fontSize: 13,
              renderOverviewRuler: false,
            }}
          />
        )}
      </div>
    </div>
  );
}
