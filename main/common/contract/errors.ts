import { z } from 'zod';

/** Every error the core returns has one of these codes; the D-Bus error name is `org.opdbus.Error.<Code>`. */
export const ErrorCode = z.enum([
  'InvalidArgument',
  'ParseError',
  'SchemaError',
  'UnknownPlugin',
  'PluginUnavailable',
  'DBusCallFailed',
  'PlanNotFound',
  'HashMismatch',
  'NotApproved',
  'StalePlan',
  'ApplyInProgress',
  'ApplyFailed',
  'VerifyFailed',
  'NotAuthorized',
  'AuditCorrupt',
  'PermissionDenied',
  'DependencyCycle',
  'PluginFailed',
  'Cancelled',
  'DeadlineExceeded',
  'NotConfirmed',
  'NothingApplied',
  'BundleRefused',
  'Internal',
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

export const ERROR_NAME_PREFIX = 'org.opdbus.Error.';

/** Where an error is: any subset of file position, JSON pointer, plugin and D-Bus endpoint. */
export const ErrorWhere = z.object({
  file: z.string().optional(),
  line: z.number().int().optional(),
  column: z.number().int().optional(),
  pointer: z.string().optional(),
  plugin: z.string().optional(),
  dbus: z
    .object({
      service: z.string(),
      path: z.string().optional(),
      interface: z.string().optional(),
      member: z.string().optional(),
    })
    .optional(),
});
export type ErrorWhere = z.infer<typeof ErrorWhere>;

export const ErrorPayload = z.object({
  code: ErrorCode,
  message: z.string(),
  where: ErrorWhere.optional(),
  details: z.unknown().optional(),
});
export type ErrorPayload = z.infer<typeof ErrorPayload>;

/** An error as a value: a code, a message for a person, and where it happened. */
export class OpError extends Error {
  readonly code: ErrorCode;
  readonly where: ErrorWhere | undefined;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, where?: ErrorWhere, details?: unknown) {
    super(message);
    this.name = 'OpError';
    this.code = code;
    this.where = where;
    this.details = details;
  }

  toPayload(): ErrorPayload {
    const p: ErrorPayload = { code: this.code, message: this.message };
    if (this.where !== undefined) p.where = this.where;
    if (this.details !== undefined) p.details = this.details;
    return p;
  }

  static fromPayload(p: ErrorPayload): OpError {
    return new OpError(p.code, p.message, p.where, p.details);
  }
}

/** One line a person can read: the message followed by where it happened. */
export function describeError(e: ErrorPayload): string {
  const w = e.where;
  if (w === undefined) return `${e.code}: ${e.message}`;
  const parts: string[] = [];
  if (w.file !== undefined) {
    let pos = w.file;
    if (w.line !== undefined) pos += `:${w.line}`;
    if (w.column !== undefined) pos += `:${w.column}`;
    parts.push(pos);
  }
  if (w.pointer !== undefined) parts.push(`at ${w.pointer === '' ? '(document root)' : w.pointer}`);
  if (w.plugin !== undefined) parts.push(`plugin ${w.plugin}`);
  if (w.dbus !== undefined) {
    const d = w.dbus;
    const member = [d.interface, d.member].filter((x) => x !== undefined).join('.');
    parts.push(`D-Bus ${d.service}${d.path !== undefined ? ` ${d.path}` : ''}${member ? ` ${member}` : ''}`);
  }
  return `${e.code}: ${e.message} (${parts.join(', ')})`;
}
