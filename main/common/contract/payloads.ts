import { z } from 'zod';
import { EmbeddingStats } from './models.js';

/** A JSON value as it travels inside payloads. */
export const Json: z.ZodType<unknown> = z.unknown();

export const Change = z.object({
  /** JSON pointer into the desired-state document, e.g. `/plugins/hostname/pretty_hostname`. */
  path: z.string(),
  /** Absent for a create. */
  before: Json.optional(),
  /** Absent for a delete. */
  after: Json.optional(),
});
export type Change = z.infer<typeof Change>;

export const ResourceAction = z.enum(['create', 'modify', 'delete', 'noop']);
export type ResourceAction = z.infer<typeof ResourceAction>;

export const ResourceDiff = z.object({
  id: z.string(),
  action: ResourceAction,
  changes: z.array(Change),
  irreversible: z.boolean().optional(),
  /**
   * Why this resource cannot be applied on this host (e.g. a port the host lacks): the plan still
   * lists every other resource, and an apply that reaches this one fails, naming it.
   */
  error: z.string().optional(),
});
export type ResourceDiff = z.infer<typeof ResourceDiff>;

export const PluginDiff = z.object({
  plugin: z.string(),
  resources: z.array(ResourceDiff),
});
export type PluginDiff = z.infer<typeof PluginDiff>;

export const Plan = z.object({
  id: z.string(),
  /** SHA-256 (hex) over RFC 8785 canonical JSON of {desired, current}: what the admin approves. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: z.string(),
  file: z.string().optional(),
  /** The desired sections of the plugins the document names (secrets redacted). */
  desired: z.record(z.string(), Json),
  /** The current state of those plugins when planned (secrets redacted). */
  current: z.record(z.string(), Json),
  /** Per plugin, in the order the apply runs them (each after the plugins it names in `after`). */
  diffs: z.array(PluginDiff),
  hasChanges: z.boolean(),
  /** `plugin/resource` of every irreversible change: they run last, and only when the apply confirms each. */
  irreversible: z.array(z.string()).default([]),
  auditSeq: z.number().int(),
});
export type Plan = z.infer<typeof Plan>;

export const QueryRequest = z.object({ plugins: z.array(z.string()).optional() }).strict();
export const PluginQueryResult = z.object({
  plugin: z.string(),
  version: z.string(),
  available: z.boolean(),
  reason: z.string().optional(),
  state: Json.optional(),
});
export const QueryResponse = z.object({ plugins: z.array(PluginQueryResult) });
export type QueryResponse = z.infer<typeof QueryResponse>;

export const SchemaRequest = z.object({}).strict();
/** The JSON Schema of the whole desired-state document, composed from every plugin's section schema. */
export const SchemaResponse = z.object({ schema: z.record(z.string(), Json) });
export type SchemaResponse = z.infer<typeof SchemaResponse>;

export const PlanRequest = z
  .object({
    /** The desired-state document as text (JSON with comments allowed). */
    document: z.string().max(4 * 1024 * 1024),
    /** Shown in error positions; the core never opens it. */
    file: z.string().max(4096).optional(),
  })
  .strict();
export type PlanRequest = z.infer<typeof PlanRequest>;

export const ApproveRequest = z
  .object({ planId: z.string().max(100), hash: z.string().regex(/^[0-9a-f]{64}$/) })
  .strict();
export type ApproveRequest = z.infer<typeof ApproveRequest>;
export const ApproveResponse = z.object({
  planId: z.string(),
  hash: z.string(),
  approvedAt: z.string(),
  auditSeq: z.number().int(),
});
export type ApproveResponse = z.infer<typeof ApproveResponse>;

/** `plugin/resource` names of irreversible changes, as the plan lists them. */
const IrreversibleConfirmation = z.array(z.string().max(1000)).max(10000);

export const ApplyRequest = ApproveRequest.extend({
  /** Every irreversible change of the plan, named: the core refuses the apply unless this lists each one. */
  confirmIrreversible: IrreversibleConfirmation.optional(),
}).strict();
export type ApplyRequest = z.infer<typeof ApplyRequest>;

/** Stops a running apply between two steps; what it applied is rolled back. */
export const CancelRequest = z.object({ planId: z.string().max(100) }).strict();
export const CancelResponse = z.object({ planId: z.string(), cancelled: z.boolean() });
export type CancelResponse = z.infer<typeof CancelResponse>;

export const PluginApplyResult = z.object({
  plugin: z.string(),
  changed: z.number().int(),
  verified: z.boolean(),
});
export const ApplyResponse = z.object({
  planId: z.string(),
  hash: z.string(),
  outcome: z.enum(['applied', 'nothing-to-do']),
  plugins: z.array(PluginApplyResult),
  /** The irreversible changes the admin confirmed (and which ran last). */
  confirmedIrreversible: z.array(z.string()).default([]),
  auditSeq: z.number().int(),
});
export type ApplyResponse = z.infer<typeof ApplyResponse>;

export const VerifyRequest = PlanRequest;
export const Drift = z.object({
  plugin: z.string(),
  path: z.string(),
  /** Absent where the document named the value's absence. */
  expected: Json.optional(),
  /** Absent where the host lacks the value (JSON drops an undefined, so the key is gone). */
  actual: Json.optional(),
});
export type Drift = z.infer<typeof Drift>;
export const VerifyResponse = z.object({
  inSync: z.boolean(),
  drift: z.array(Drift),
  auditSeq: z.number().int(),
});
export type VerifyResponse = z.infer<typeof VerifyResponse>;

/** The host against the last applied document (kept with its plan hash), apart from any planned change. */
export const DriftRequest = z.object({}).strict();
export const DriftResponse = z.object({
  /** Hash of the plan that applied the document drift is measured against; null when nothing was applied yet. */
  planHash: z.string().nullable(),
  appliedAt: z.string().nullable(),
  file: z.string().optional(),
  inSync: z.boolean(),
  /** Each drifted value: `expected` as applied, `actual` as the host has it now. */
  drift: z.array(Drift),
  auditSeq: z.number().int(),
});
export type DriftResponse = z.infer<typeof DriftResponse>;

/** Re-applies the last applied document where the host drifted from it. */
export const ConvergeRequest = z
  .object({
    confirmIrreversible: IrreversibleConfirmation.optional(),
    /** Only plan the converge (audited as a plan): what it would change, and its irreversible changes. */
    dryRun: z.boolean().optional(),
  })
  .strict();
export const ConvergeResponse = z.object({
  /** The plan hash of the applied document being re-established. */
  planHash: z.string(),
  plan: Plan,
  apply: ApplyResponse.nullable(),
});
export type ConvergeResponse = z.infer<typeof ConvergeResponse>;

/** The plugins the core found, through their manifests. */
/** One plugin's effective `[config]`: its manifest's with the core configuration's `[plugins.<name>]` over it. */
export const PluginConfigRequest = z
  .object({
    plugin: z.string().regex(/^[a-z][a-z0-9_]*$/, 'a plugin name: lower-case letters, digits and "_"'),
  })
  .strict();
export const PluginConfigResponse = z.object({ plugin: z.string(), config: z.record(z.string(), Json) });
export type PluginConfigResponse = z.infer<typeof PluginConfigResponse>;

export const PluginsRequest = z.object({}).strict();
export const PluginInfo = z.object({
  name: z.string(),
  version: z.string(),
  source: z.enum(['built-in', 'generated', 'community']),
  /** Where it runs: built-ins in the core, generated and community plugins in an isolated process. */
  isolation: z.enum(['in-process', 'out-of-process']).optional(),
  /** Whether it can change anything (a generated plugin only through its semantic mapping), and why not. */
  writable: z.boolean().optional(),
  read_only_because: z.string().optional(),
  /** The D-Bus service it drives, when its manifest names one. */
  service: z.string().optional(),
  /** False for a plugin found and listed but not loaded (a generated plugin whose service a built-in owns). */
  loaded: z.boolean().optional(),
  description: z.string().optional(),
  /** The plugins it is applied after (its `[dependencies] plugins`). */
  after: z.array(z.string()),
  /** Its `[permissions]`: the bus calls it may make. */
  permissions: z.object({ dbus: z.array(Json) }),
  deadline_s: z.number(),
  available: z.boolean(),
  why_not: z.string().optional(),
  /** Things worth knowing that do not stop it (e.g. an `after` naming a plugin that is not installed). */
  notes: z.array(z.string()).default([]),
});
export type PluginInfo = z.infer<typeof PluginInfo>;
export const PluginsResponse = z.object({
  plugins: z.array(PluginInfo),
  /** Directories and plugins that were not loaded, and why. */
  refused: z.array(z.object({ dir: z.string(), name: z.string().optional(), reason: z.string() })),
});
export type PluginsResponse = z.infer<typeof PluginsResponse>;

export const AuditKind = z.enum([
  'query',
  'plan',
  'approve',
  'apply',
  'verify',
  'rollback',
  'drift',
  'auth-denied',
  'plugin',
  'recovery',
  'converge',
]);
export type AuditKind = z.infer<typeof AuditKind>;

export const AuditActor = z.object({
  uid: z.number().int().nullable(),
  /** The caller's unique bus name (the polkit subject), or `core` for the core's own entries. */
  subject: z.string(),
  /** The polkit action that authorised the call, when there was one. */
  action: z.string().optional(),
  /** How the calling program labels the session behind the call (`client` of the request), when it did. */
  client: z.string().optional(),
});
export type AuditActor = z.infer<typeof AuditActor>;

/**
 * Any Manager1 request may carry `client` besides its own fields: how the calling program labels the
 * person or session behind the call (`op-dbus serve` names the console session and its browser). The bus
 * vouches for the caller's uid; this label is the caller's own word, recorded beside the uid in the audit
 * entry's actor. Relays never accept it from their less-trusted side: they set it themselves.
 */
export const ClientLabel = z.string().min(1).max(200);

/** Splits a raw request into the method's own fields and its `client` label (see ClientLabel). */
export function takeClientLabel(raw: unknown): { request: unknown; client?: string } | { error: string } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || !Object.hasOwn(raw, 'client')) {
    return { request: raw };
  }
  const { client, ...request } = raw as Record<string, unknown>;
  const label = ClientLabel.safeParse(client);
  if (!label.success) return { error: `client: ${label.error.issues[0]?.message ?? 'invalid'}` };
  return { request, client: label.data };
}

/** One audit entry, exactly the object whose canonical JSON is hashed as the RFC 6962 leaf. */
export const AuditEntry = z.object({
  seq: z.number().int().nonnegative(),
  time: z.string(),
  kind: AuditKind,
  actor: AuditActor,
  plugin: z.string().nullable(),
  summary: z.string(),
  payload_hash: z.string().nullable(),
  durations: z.record(z.string(), z.number()).nullable(),
  /** Leaf hash (hex) of the previous entry; 64 zeros for the first. */
  prev: z.string(),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

export const AuditListRequest = z
  .object({
    limit: z.number().int().min(1).max(10000).optional(),
    beforeSeq: z.number().int().optional(),
    kind: AuditKind.optional(),
    plugin: z.string().optional(),
    text: z.string().max(1000).optional(),
    /** Only entries at or after this time (ISO 8601). */
    since: z.string().max(64).optional(),
    /** Only entries before this time (ISO 8601). */
    until: z.string().max(64).optional(),
    /** Only entries of this caller uid. */
    actor: z.number().int().optional(),
  })
  .strict();
export type AuditListRequest = z.infer<typeof AuditListRequest>;
export const AuditListEntry = AuditEntry.extend({ leaf: z.string() });
export type AuditListEntry = z.infer<typeof AuditListEntry>;
export const AuditListResponse = z.object({ entries: z.array(AuditListEntry), size: z.number().int() });
export type AuditListResponse = z.infer<typeof AuditListResponse>;

/** The log's size and the leaf hash of its last entry: saved elsewhere, it catches truncation and rewrites. */
export const AuditHead = z.object({ size: z.number().int().nonnegative(), head: z.string() });
export type AuditHead = z.infer<typeof AuditHead>;

export const AuditVerifyRequest = z.object({ checkpoint: AuditHead.optional() }).strict();
export const AuditVerifyResponse = z.object({
  ok: z.boolean(),
  size: z.number().int(),
  head: z.string(),
  firstBad: z.object({ seq: z.number().int(), reason: z.string() }).optional(),
  /**
   * The search index beside the chain (outside the leaf hashes): how many entries it holds, how many have a
   * vector under the active model, how many are queued for one, and rows that disagreed with the chain
   * (re-indexed from it). A missing vector is never a bad entry: the chain's verdict is ok/firstBad.
   */
  search: z
    .object({
      model: z.string().nullable(),
      entries: z.number().int(),
      indexed: z.number().int(),
      vectors: z.number().int(),
      queued: z.number().int(),
      stale: z.number().int(),
    })
    .optional(),
});
export type AuditVerifyResponse = z.infer<typeof AuditVerifyResponse>;

const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/);

/** Asks for the latest signed checkpoint; the core signs a new one first if the log has grown. */
export const AuditCheckpointRequest = z.object({}).strict();
export const AuditCheckpointResponse = z.object({
  /** The checkpoint as a C2SP signed note (tlog-checkpoint body, then `— name sig` lines). */
  note: z.string(),
  origin: z.string(),
  size: z.number().int().nonnegative(),
  /** Base64 RFC 6962 root hash. */
  root: Base64,
  /** The core's public key in the signed-note verifier key format `name+keyhash+base64(0x01||key)`. */
  verifierKey: z.string(),
  time: z.string(),
});
export type AuditCheckpointResponse = z.infer<typeof AuditCheckpointResponse>;

/** Inclusion proof of entry `seq`; `size` defaults to the latest checkpoint's. */
export const AuditProveRequest = z
  .object({ seq: z.number().int().nonnegative(), size: z.number().int().positive().optional() })
  .strict();
export const AuditProveResponse = z.object({
  seq: z.number().int(),
  size: z.number().int(),
  /** Base64 of the exact bytes hashed as the RFC 6962 leaf (the entry's canonical JSON). */
  entry: Base64,
  proof: z.array(Base64),
  /** The signed checkpoint of that size, when the core issued one. */
  checkpoint: z.string().nullable(),
});
export type AuditProveResponse = z.infer<typeof AuditProveResponse>;

/** Consistency proof from `oldSize` to `newSize` (default: the latest checkpoint's size). */
export const AuditConsistencyRequest = z
  .object({ oldSize: z.number().int().positive(), newSize: z.number().int().positive().optional() })
  .strict();
export const AuditConsistencyResponse = z.object({
  oldSize: z.number().int(),
  newSize: z.number().int(),
  proof: z.array(Base64),
  checkpoint: z.string().nullable(),
});
export type AuditConsistencyResponse = z.infer<typeof AuditConsistencyResponse>;

/** A page of the log as its exact leaf bytes, for `audit export`. */
export const AuditExportRequest = z
  .object({ fromSeq: z.number().int().nonnegative(), limit: z.number().int().min(1).max(10000).optional() })
  .strict();
export const AuditExportResponse = z.object({
  entries: z.array(z.object({ seq: z.number().int(), leaf: Base64 })),
  size: z.number().int(),
});
export type AuditExportResponse = z.infer<typeof AuditExportResponse>;

/** A payload by its hash: the payload, or when and why retention pruned it. */
export const AuditPayloadRequest = z.object({ hash: z.string().regex(/^[0-9a-f]{64}$/) }).strict();
export const AuditPayloadResponse = z.object({
  hash: z.string(),
  status: z.enum(['stored', 'pruned', 'unknown']),
  payload: Json.optional(),
  prunedAt: z.string().optional(),
  reason: z.string().optional(),
});
export type AuditPayloadResponse = z.infer<typeof AuditPayloadResponse>;

/** Hybrid search over the audit log (BM25 over the summaries fused with embedding similarity), with the list's filters. */
export const AuditSearchRequest = z
  .object({
    query: z.string().min(1).max(1000),
    limit: z.number().int().min(1).max(200).optional(),
    /** Only entries at or after this time (ISO 8601). */
    since: z.string().max(64).optional(),
    /** Only entries before this time (ISO 8601). */
    until: z.string().max(64).optional(),
    kind: AuditKind.optional(),
    plugin: z.string().max(200).optional(),
    /** Only entries of this caller uid. */
    actor: z.number().int().optional(),
    /** hybrid (default), or one side alone: lexical (BM25) or semantic (the active embedder). */
    mode: z.enum(['hybrid', 'lexical', 'semantic']).optional(),
  })
  .strict();
export type AuditSearchRequest = z.infer<typeof AuditSearchRequest>;
export const AuditSearchResult = z.object({
  seq: z.number().int(),
  /** The fused score (higher is better); its parts are the normalised lexical and semantic scores. */
  score: z.number(),
  parts: z.object({
    /** BM25 of the summary, scaled to 0..1 within this answer; null when the words did not match it. */
    lexical: z.number().nullable(),
    /** Cosine similarity of the query and the entry under the active model; null when it has no vector yet. */
    semantic: z.number().nullable(),
  }),
  entry: AuditListEntry,
  /** How to prove the entry is in the log: the command that prints its inclusion proof. */
  prove: z.string(),
});
export type AuditSearchResult = z.infer<typeof AuditSearchResult>;
export const AuditSearchResponse = z.object({
  results: z.array(AuditSearchResult),
  /** The model whose vectors (and only whose) the semantic part used; null when no embedder runs. */
  model: z.object({ id: z.string(), name: z.string(), label: z.string() }).nullable(),
  /** exact: every vector scored; ann: the HNSW index (past a size threshold); none: no semantic part. */
  method: z.enum(['exact', 'ann', 'none']),
  /** Identifiers of the query (numbers, names with digits or dots) that every result contains exactly. */
  exact: z.array(z.string()),
  /** Entries not yet embedded under the active model (they can still match lexically). */
  queued: z.number().int(),
  size: z.number().int(),
});
export type AuditSearchResponse = z.infer<typeof AuditSearchResponse>;

/** The names of the core's signals (Signals in manager1.ts, which checks that the two lists agree). */
export const SignalNameSchema = z.enum(['ApplyProgress', 'Metrics']);

/**
 * Asks the core to send these signals to the caller. The core sends its signals only to the bus names
 * that asked (as unicast signals, destination set), so no other bus user sees plan ids, hashes or host
 * metrics the read action did not allow it; a subscriber is dropped when its name leaves the bus.
 */
export const SubscribeRequest = z.object({ signals: z.array(SignalNameSchema).min(1).max(8) }).strict();
/** Every signal the caller now receives. */
export const SubscribeResponse = z.object({ signals: z.array(SignalNameSchema) });
export type SubscribeResponse = z.infer<typeof SubscribeResponse>;

export const ApplyProgress = z.object({
  planId: z.string(),
  plugin: z.string().nullable(),
  step: z.enum(['start', 'checkpoint', 'apply', 'verify', 'rollback', 'done', 'failed', 'cancelling']),
  message: z.string(),
});
export type ApplyProgress = z.infer<typeof ApplyProgress>;

export const StatsRequest = z.object({}).strict();
/** What the core measures of itself and its host, as the Stats answer and the periodic Metrics signal. */
export const Stats = z.object({
  time: z.string(),
  nodes: z.array(z.object({ id: z.number().int(), total_kb: z.number(), free_kb: z.number() })),
  core: z.object({
    pid: z.number().int(),
    /** The CPU and NUMA node the core's main thread ran on when measured (getcpu), or why unknown. */
    cpu: z.number().int().nullable(),
    node: z.number().int().nullable(),
    affinity: z.array(z.number().int()).nullable(),
    rss_kb: z.number(),
    unavailable: z.string().optional(),
  }),
  placement: z.object({
    enabled: z.boolean(),
    node: z.number().int().nullable(),
    cpus: z.array(z.number().int()),
    reason: z.string(),
  }),
  /** Page-cache residency (mincore) of the core's files: the audit log's SQLite files and the cache. */
  files: z.array(
    z.object({
      name: z.string(),
      bytes: z.number(),
      resident: z.number().nullable(),
      unavailable: z.string().optional(),
    }),
  ),
  storage: z.object({ mode: z.enum(['btrfs', 'plain']), filesystem: z.string() }),
  /**
   * How the audit log does its heavy work in this core: appends committed by a writer thread or on the
   * core's own thread; verify on worker threads or not; the native fast path of the verify walk loaded.
   */
  audit: z
    .object({
      writer: z.enum(['thread', 'in-thread']),
      verify_workers: z.boolean(),
      native_walk: z.boolean(),
    })
    .optional(),
  /** The embedding model, cache tiers and embedder process (absent until the core has embedded). */
  embedding: EmbeddingStats.optional(),
});
export type Stats = z.infer<typeof Stats>;

/** Where the audit log's heavy work runs, in words (the CLI and the console say it alike). */
export function describeAuditMechanics(a: NonNullable<Stats['audit']>): string {
  return [
    a.writer === 'thread'
      ? 'appends committed by a writer thread'
      : "appends committed on the core's own thread",
    a.verify_workers ? 'verify on worker threads' : "verify on the core's own thread",
    a.native_walk ? 'native verify fast path' : 'no native verify fast path',
  ].join('; ');
}

export const TopologyRequest = z.object({}).strict();
/** The host's CPU, cache and NUMA topology as the core reads it from sysfs (`op-dbus topology --json`). */
export const TopologyResponse = z.object({
  nodes: z.array(
    z.object({
      id: z.number().int(),
      cpus: z.array(z.number().int()),
      memory_kb: z.number().nullable(),
      distances: z.array(z.number().nullable()),
    }),
  ),
  packages: z.array(
    z.object({
      id: z.number().int().nullable(),
      cpus: z.array(z.number().int()),
      nodes: z.array(z.number().int()),
    }),
  ),
  cores: z.array(
    z.object({
      package: z.number().int().nullable(),
      id: z.number().int().nullable(),
      cpus: z.array(z.number().int()),
    }),
  ),
  caches: z.array(
    z.object({
      level: z.number().int(),
      type: z.enum(['data', 'instruction', 'unified']),
      size_kb: z.number().nullable(),
      cpus: z.array(z.number().int()),
    }),
  ),
  offline_cpus: z.array(z.number().int()),
  warnings: z.array(z.string()),
});
export type TopologyResponse = z.infer<typeof TopologyResponse>;
