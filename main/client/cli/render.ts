import type {
  DriftResponse,
  PluginsResponse,
  Stats,
  ApplyResponse,
  AuditListResponse,
  AuditVerifyResponse,
  Plan,
  QueryResponse,
  VerifyResponse,
} from '../../common/contract/index.js';
import { describeAuditMechanics } from '../../common/contract/index.js';

const SYMBOL = { create: '+', modify: '~', delete: '-', noop: ' ' } as const;

function show(v: unknown): string {
  return v === undefined ? '(unset)' : JSON.stringify(v);
}

/** A plan as an admin reads it: one line per change, before → after. */
export function planText(plan: Plan): string {
  const lines: string[] = [];
  for (const d of plan.diffs) {
    const changing = d.resources.filter((r) => r.action !== 'noop');
    lines.push(`${d.plugin}: ${changing.length === 0 ? 'no changes' : `${changing.length} change(s)`}`);
    for (const r of changing) {
      lines.push(`  ${SYMBOL[r.action]} ${r.id}${r.irreversible === true ? '  (irreversible)' : ''}`);
      for (const c of r.changes) lines.push(`      ${c.path}: ${show(c.before)} → ${show(c.after)}`);
      if (r.error !== undefined) lines.push(`      error: ${r.error}`);
    }
  }
  if (plan.irreversible.length > 0) {
    lines.push('', 'Irreversible (run last, only with --confirm-irreversible):');
    for (const r of plan.irreversible) lines.push(`  ! ${r}`);
  }
  lines.push('');
  lines.push(plan.hasChanges ? `Plan hash: ${plan.hash}` : `No changes. The host matches the document.`);
  return lines.join('\n');
}

export function applyText(r: ApplyResponse): string {
  if (r.outcome === 'nothing-to-do') return `Nothing to do: plan ${r.hash} had no changes.`;
  const per = r.plugins.map(
    (p) => `  ${p.plugin}: ${p.changed} change(s), ${p.verified ? 'verified' : 'NOT verified'}`,
  );
  const irreversible = r.confirmedIrreversible.map((id) => `  ! ${id} (irreversible, confirmed)`);
  return [`Applied plan ${r.hash} (audit entry ${r.auditSeq}):`, ...per, ...irreversible].join('\n');
}

/** The host against the last applied document. */
export function driftText(r: DriftResponse): string {
  if (r.planHash === null) return 'Nothing has been applied on this host yet: no drift to measure.';
  const head = `Against applied plan ${r.planHash} (${r.appliedAt ?? '?'}${r.file !== undefined ? `, ${r.file}` : ''}):`;
  if (r.inSync) return `${head}\n  in sync.`;
  return [
    head,
    ...r.drift.map((d) => `  ${d.plugin} ${d.path}: applied ${show(d.expected)}, host has ${show(d.actual)}`),
  ].join('\n');
}

/** The plugins the core found, in apply order, and what it refused. */
/** Where a plugin comes from, where it runs, and whether it can change anything: "generated, out-of-process, read-only". */
export function pluginTraits(p: PluginsResponse['plugins'][number]): string {
  const writable = p.writable === undefined ? [] : [p.writable ? 'writable' : 'read-only'];
  return [p.source, ...(p.isolation !== undefined ? [p.isolation] : []), ...writable].join(', ');
}

export function pluginsText(r: PluginsResponse): string {
  const lines: string[] = [];
  for (const p of r.plugins) {
    lines.push(
      `${p.name} ${p.version} (${pluginTraits(p)})${p.after.length > 0 ? ` after ${p.after.join(', ')}` : ''}: ${p.available ? 'available' : `unavailable: ${p.why_not ?? ''}`}`,
    );
    for (const perm of p.permissions.dbus as {
      name: string;
      interface: string;
      methods: string[];
      properties: string;
    }[]) {
      lines.push(
        `    may call ${perm.name} ${perm.interface}: ${perm.methods.length > 0 ? perm.methods.join(', ') : 'no methods'}; properties ${perm.properties}`,
      );
    }
    for (const n of p.notes) lines.push(`    note: ${n}`);
  }
  for (const r2 of r.refused)
    lines.push(`refused ${r2.dir}${r2.name !== undefined ? ` (${r2.name})` : ''}: ${r2.reason}`);
  return lines.join('\n');
}

export function verifyText(r: VerifyResponse): string {
  if (r.inSync) return 'In sync: the host matches every value the document names.';
  return [
    'Drift:',
    ...r.drift.map((d) => `  ${d.path}: expected ${show(d.expected)}, host has ${show(d.actual)}`),
  ].join('\n');
}

export function queryText(r: QueryResponse): string {
  return r.plugins
    .map((p) =>
      p.available
        ? `${p.plugin} ${p.version}\n${JSON.stringify(p.state, null, 2).replace(/^/gm, '  ')}`
        : `${p.plugin} ${p.version}: unavailable: ${p.reason ?? ''}`,
    )
    .join('\n');
}

export function auditListText(r: AuditListResponse): string {
  const rows = r.entries.map(
    (e) =>
      `${String(e.seq).padStart(6)}  ${e.time}  ${e.kind.padEnd(11)}  uid=${String(e.actor.uid ?? '-').padEnd(5)}  ${e.summary}`,
  );
  return [...rows, `(${r.entries.length} of ${r.size} entries)`].join('\n');
}

export function auditVerifyText(r: AuditVerifyResponse): string {
  const verdict = r.ok
    ? `Audit log intact: ${r.size} entries, head ${r.head}`
    : `AUDIT LOG DAMAGED at entry ${r.firstBad?.seq ?? '?'}: ${r.firstBad?.reason ?? 'unknown'} (${r.size} entries)`;
  const s = r.search;
  if (s === undefined) return verdict;
  // the index beside the chain: a missing vector is queued work, never a damaged entry
  return `${verdict}\nSearch index (beside the chain, not hashed): ${s.indexed} entries indexed, ${s.vectors} with a vector of model ${s.model?.slice(0, 12) ?? '(none)'}, ${s.queued} queued${s.stale > 0 ? `, ${s.stale} stale row(s) indexed again from the chain` : ''}`;
}

const gib = (kb: number): string => `${(kb / 1024 / 1024).toFixed(1)} GiB`;
const pct = (f: number | null): string => (f === null ? 'n/a' : `${(f * 100).toFixed(1)} %`);

/** What the core measures of itself and its host, for a person. */
export function statsText(s: Stats): string {
  const lines = [`core pid ${s.core.pid}, ${Math.round(s.core.rss_kb / 1024)} MiB resident`];
  lines.push(
    s.core.unavailable !== undefined
      ? `  running on: unavailable (${s.core.unavailable})`
      : `  running on: CPU ${s.core.cpu ?? '?'}, node ${s.core.node ?? '?'}; allowed CPUs ${(s.core.affinity ?? []).join(',')}`,
  );
  lines.push(`  placement: ${s.placement.reason}`);
  lines.push(`  storage: ${s.storage.mode} on ${s.storage.filesystem}`);
  if (s.audit !== undefined) lines.push(`  audit log: ${describeAuditMechanics(s.audit)}`);
  lines.push('', 'node  free       total');
  for (const n of s.nodes)
    lines.push(`${String(n.id).padEnd(4)}  ${gib(n.free_kb).padEnd(9)}  ${gib(n.total_kb)}`);
  lines.push('', 'page cache  size        file');
  for (const f of s.files) {
    lines.push(
      `${pct(f.resident).padEnd(10)}  ${`${(f.bytes / 1024).toFixed(0)} KiB`.padEnd(10)}  ${f.name}${f.unavailable !== undefined ? `  (${f.unavailable})` : ''}`,
    );
  }
  return lines.join('\n');
}
