import { z } from 'zod';

/** A JSON value as it travels inside payloads. */
export const Json: z.ZodType<unknown> = z.unknown();

export const Change = z.object({
  /** JSON pointer into the desired-state document, e.g. `/plugins/hostname/pretty_hostname`. */
  path: z.string(),
  before: Json,
  after: Json,
});
export type Change = z.infer<typeof Change>;

export const ResourceAction = z.enum(['create', 'modify', 'delete', 'noop']);
export type ResourceAction = z.infer<typeof ResourceAction>;

export const ResourceDiff = z.object({
  id: z.string(),
  action: ResourceAction,
  changes: z.array(Change),
  irreversible: z.boolean().optional(),
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
  diffs: z.array(PluginDiff),
  hasChanges: z.boolean(),
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

export const ApplyRequest = ApproveRequest;
export type ApplyRequest = ApproveRequest;

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
  auditSeq: z.number().int(),
});
export type ApplyResponse = z.infer<typeof ApplyResponse>;

export const VerifyRequest = PlanRequest;
export const Drift = z.object({ plugin: z.string(), path: z.string(), expected: Json, actual: Json });
export type Drift = z.infer<typeof Drift>;
export const VerifyResponse = z.object({
  inSync: z.boolean(),
  drift: z.array(Drift),
  auditSeq: z.number().int(),
});
export type VerifyResponse = z.infer<typeof VerifyResponse>;

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
]);
export type AuditKind = z.infer<typeof AuditKind>;

export const AuditActor = z.object({
  uid: z.number().int().nullable(),
  /** The caller's unique bus name (the polkit subject), or `core` for the core's own entries. */
  subject: z.string(),
  /** The polkit action that authorised the call, when there was one. */
  action: z.string().optional(),
});
export type AuditActor = z.infer<typeof AuditActor>;

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
});
export type AuditVerifyResponse = z.infer<typeof AuditVerifyResponse>;

export const ApplyProgress = z.object({
  planId: z.string(),
  plugin: z.string().nullable(),
  step: z.enum(['start', 'checkpoint', 'apply', 'verify', 'rollback', 'done', 'failed']),
  message: z.string(),
});
export type ApplyProgress = z.infer<typeof ApplyProgress>;
