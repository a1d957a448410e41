import type { z } from 'zod';
import {
  ApplyProgress,
  ApplyRequest,
  ApplyResponse,
  ApproveRequest,
  ApproveResponse,
  AuditListRequest,
  AuditListResponse,
  AuditVerifyRequest,
  AuditVerifyResponse,
  AuditCheckpointRequest,
  AuditCheckpointResponse,
  AuditConsistencyRequest,
  AuditConsistencyResponse,
  AuditExportRequest,
  AuditExportResponse,
  AuditPayloadRequest,
  AuditPayloadResponse,
  AuditProveRequest,
  AuditProveResponse,
  AuditSearchRequest,
  AuditSearchResponse,
  Plan,
  CancelRequest,
  CancelResponse,
  ConvergeRequest,
  ConvergeResponse,
  DriftRequest,
  DriftResponse,
  PluginsRequest,
  PluginConfigRequest,
  PluginConfigResponse,
  PluginsResponse,
  SchemaRequest,
  SchemaResponse,
  Stats,
  StatsRequest,
  TopologyRequest,
  TopologyResponse,
  PlanRequest,
  QueryRequest,
  QueryResponse,
  VerifyRequest,
  VerifyResponse,
  SignalNameSchema,
  SubscribeRequest,
  SubscribeResponse,
} from './payloads.js';
import {
  ModelInfoRequest,
  ModelInfoResponse,
  ModelsRequest,
  ModelsResponse,
  ModelUseRequest,
  ModelUseResponse,
} from './models.js';
import {
  PluginInstallRequest,
  PluginInstallResponse,
  PluginRemoveRequest,
  PluginRemoveResponse,
  PluginRollbackRequest,
  PluginRollbackResponse,
  PluginShowRequest,
  PluginShowResponse,
} from './bundles.js';

export const BUS_NAME = 'org.opdbus.Manager1';
export const OBJECT_PATH = '/org/opdbus/Manager1';
export const INTERFACE_NAME = 'org.opdbus.Manager1';

/** The polkit action suffixes; the full id is `org.opdbus.<action>`. */
export type Action =
  'read' | 'plan' | 'apply' | 'rollback' | 'manage-plugins' | 'audit-admin' | 'manage-models';

interface MethodSpec<Req extends z.ZodType, Res extends z.ZodType> {
  request: Req;
  response: Res;
  action: Action;
}

function method<Req extends z.ZodType, Res extends z.ZodType>(
  request: Req,
  response: Res,
  action: Action,
): MethodSpec<Req, Res> {
  return { request, response, action };
}

/**
 * The Manager1 interface: every method takes one JSON string and returns one JSON string
 * (D-Bus signature `s` → `s`), validated on both sides by these schemas.
 */
export const Manager1 = {
  Query: method(QueryRequest, QueryResponse, 'read'),
  Schema: method(SchemaRequest, SchemaResponse, 'read'),
  Stats: method(StatsRequest, Stats, 'read'),
  Topology: method(TopologyRequest, TopologyResponse, 'read'),
  Plan: method(PlanRequest, Plan, 'plan'),
  Approve: method(ApproveRequest, ApproveResponse, 'apply'),
  Apply: method(ApplyRequest, ApplyResponse, 'apply'),
  Verify: method(VerifyRequest, VerifyResponse, 'read'),
  Cancel: method(CancelRequest, CancelResponse, 'apply'),
  Drift: method(DriftRequest, DriftResponse, 'read'),
  Converge: method(ConvergeRequest, ConvergeResponse, 'apply'),
  Plugins: method(PluginsRequest, PluginsResponse, 'read'),
  PluginConfig: method(PluginConfigRequest, PluginConfigResponse, 'read'),
  Subscribe: method(SubscribeRequest, SubscribeResponse, 'read'),
  AuditList: method(AuditListRequest, AuditListResponse, 'read'),
  AuditVerify: method(AuditVerifyRequest, AuditVerifyResponse, 'read'),
  AuditCheckpoint: method(AuditCheckpointRequest, AuditCheckpointResponse, 'read'),
  AuditProve: method(AuditProveRequest, AuditProveResponse, 'read'),
  AuditConsistency: method(AuditConsistencyRequest, AuditConsistencyResponse, 'read'),
  AuditExport: method(AuditExportRequest, AuditExportResponse, 'read'),
  AuditPayload: method(AuditPayloadRequest, AuditPayloadResponse, 'read'),
  Models: method(ModelsRequest, ModelsResponse, 'read'),
  ModelUse: method(ModelUseRequest, ModelUseResponse, 'manage-models'),
  ModelInfo: method(ModelInfoRequest, ModelInfoResponse, 'read'),
  AuditSearch: method(AuditSearchRequest, AuditSearchResponse, 'read'),
  PluginInstall: method(PluginInstallRequest, PluginInstallResponse, 'manage-plugins'),
  PluginRemove: method(PluginRemoveRequest, PluginRemoveResponse, 'manage-plugins'),
  PluginRollback: method(PluginRollbackRequest, PluginRollbackResponse, 'manage-plugins'),
  PluginShow: method(PluginShowRequest, PluginShowResponse, 'manage-plugins'),
} as const;

export type MethodName = keyof typeof Manager1;
export type RequestOf<M extends MethodName> = z.input<(typeof Manager1)[M]['request']>;
export type ResponseOf<M extends MethodName> = z.output<(typeof Manager1)[M]['response']>;

export const Signals = {
  ApplyProgress,
  /** Stats, sent every few seconds while the core runs (clients listen; nobody polls). */
  Metrics: Stats,
} as const;
export type SignalName = keyof typeof Signals;
// Subscribe names exactly these signals: this fails to compile when the two lists part.
const signalNamesAgree: [SignalName] extends [z.infer<typeof SignalNameSchema>]
  ? [z.infer<typeof SignalNameSchema>] extends [SignalName]
    ? true
    : never
  : never = true;
void signalNamesAgree;

/** The introspection XML the core publishes for its object. */
export function introspectionXml(): string {
  const methods = Object.keys(Manager1)
    .map(
      (name) =>
        `    <method name="${name}">\n      <arg name="request" type="s" direction="in"/>\n      <arg name="response" type="s" direction="out"/>\n    </method>`,
    )
    .join('\n');
  const signals = Object.keys(Signals)
    .map((name) => `    <signal name="${name}">\n      <arg name="payload" type="s"/>\n    </signal>`)
    .join('\n');
  return `<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node>
  <interface name="${INTERFACE_NAME}">
    <annotation name="${CONTRACT_VERSION_ANNOTATION}" value="${CONTRACT_VERSION}"/>
${methods}
${signals}
  </interface>
  <interface name="org.freedesktop.DBus.Introspectable">
    <method name="Introspect">
      <arg name="xml" type="s" direction="out"/>
    </method>
  </interface>
  <interface name="org.freedesktop.DBus.Peer">
    <method name="Ping"/>
  </interface>
</node>
`;
}

/**
 * The version of this contract (methods, payloads, signals). A client refuses a core of another
 * version with a sentence that says so, instead of failing later on a payload it misreads.
 * Raise it with any change that a client or core of the previous build would misread;
 * contract.version.test.ts fails on every change to the contract until someone has decided that.
 */
export const CONTRACT_VERSION = 2;

/** The annotation of the Manager1 interface in the core's introspection XML that carries the version. */
export const CONTRACT_VERSION_ANNOTATION = 'org.opdbus.Manager1.ContractVersion';

/** The contract version a core's introspection XML declares, or undefined when it declares none (a core older than the marker). */
export function contractVersionOf(xml: string): number | undefined {
  const name = CONTRACT_VERSION_ANNOTATION.replaceAll('.', '\\.');
  const m = new RegExp(`<annotation\\s+name="${name}"\\s+value="(\\d+)"\\s*/>`).exec(xml);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}
