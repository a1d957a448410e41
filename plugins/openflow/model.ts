import { z } from 'zod';

// The openflow section, in the original project's shape (openflow-state.json): flows per bridge,
// flow policies expanded over containers, the controller the bridges connect to.

const NAME = /^[A-Za-z0-9_.:@-]{1,15}$/;
// a value inside a match or action: no separators of ovs-ofctl's syntax (",", " ", "=", newlines)
const VALUE = /^[A-Za-z0-9_.:/+\-{}[\]>]{1,200}$/;
const valueError = { 'x-error': 'letters, digits and . _ : / + - { } [ ] > only (no spaces, commas or "=")' };

const portRef = z
  .union([z.number().int().min(0).max(0xffff_ff00), z.string().regex(VALUE).meta(valueError)])
  .describe(
    'an OVS port name on the bridge, a port number, or LOCAL, IN_PORT, CONTROLLER, ALL, FLOOD, NORMAL',
  );
const table = z.number().int().min(0).max(254);
const register = z.number().int().min(0).max(15);
const value = z.union([z.number().int().min(0), z.string().regex(VALUE).meta(valueError)]);

export const Action = z.discriminatedUnion('type', [
  z.object({ type: z.literal('drop') }).strict(),
  z.object({ type: z.literal('normal') }).strict(),
  z.object({ type: z.literal('flood') }).strict(),
  z.object({ type: z.literal('output'), port: portRef }).strict(),
  z
    .object({ type: z.literal('controller'), max_len: z.number().int().min(0).max(65535).optional() })
    .strict(),
  z.object({ type: z.literal('resubmit'), table: table.optional(), port: portRef.optional() }).strict(),
  z.object({ type: z.literal('goto_table'), table }).strict(),
  z.object({ type: z.literal('load_register'), register, value }).strict(),
  z.object({ type: z.literal('set_field'), field: z.string().regex(/^[a-z_][a-z0-9_]*$/), value }).strict(),
  z.object({ type: z.literal('mod_vlan_vid'), vlan: z.number().int().min(0).max(4095) }).strict(),
  z.object({ type: z.literal('strip_vlan') }).strict(),
  z
    .object({ type: z.literal('push_vlan'), ethertype: z.number().int().min(0).max(0xffff).optional() })
    .strict(),
  z.object({ type: z.literal('group'), group_id: z.number().int().min(0).max(0xffff_ff00) }).strict(),
  z
    .object({
      type: z.literal('ct'),
      args: z
        .string()
        .regex(/^[A-Za-z0-9_.:/+\-=,()]{0,200}$/)
        .optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('raw'),
      action: z
        .string()
        .regex(/^[^\s]{1,500}$/)
        .meta({ 'x-error': 'one action in ovs-ofctl syntax, without spaces or newlines' }),
    })
    .strict()
    .describe('any other action ovs-ofctl accepts, e.g. "learn(...)", "dec_ttl"'),
]);
export type Action = z.infer<typeof Action>;

const matchFields = z
  .record(
    z.string().regex(/^[a-z_][a-z0-9_]*$/),
    z.union([z.string().regex(VALUE).meta(valueError), z.number().int().min(0), z.literal(true)]),
  )
  .describe(
    'field → value ("in_port": "vh1", "nw_dst": "10.0.0.0/24"); true for a bare keyword ("tcp": true)',
  );

const timeouts = {
  idle_timeout: z.number().int().min(0).max(65535).optional(),
  hard_timeout: z.number().int().min(0).max(65535).optional(),
};

export const StructuredFlow = z
  .object({
    table: table.optional(),
    priority: z.number().int().min(0).max(65535).optional(),
    match_fields: matchFields.optional(),
    actions: z.array(Action),
    ...timeouts,
  })
  .strict();
export type StructuredFlow = z.infer<typeof StructuredFlow>;

/** A flow in ovs-ofctl's own syntax, without a cookie (ours is added): what query returns. */
export const RawFlow = z
  .string()
  .regex(/^(?![\s\S]*\bcookie\s*=)[^\n\r]{1,2000}$/)
  .meta({ 'x-error': 'one flow in ovs-ofctl syntax on one line, without a cookie (op-dbus sets its own)' });

export const Flow = z.union([StructuredFlow, RawFlow]);
export type Flow = z.infer<typeof Flow>;

export const Policy = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
    selector: z
      .string()
      .regex(/^container:(\*|[A-Za-z0-9_.-]{1,64})$/)
      .meta({ 'x-error': 'container:* or container:<id>' }),
    template: z
      .object({
        table: table.optional(),
        priority: z.number().int().min(0).max(65535).optional(),
        match_fields: matchFields.optional(),
        additional_matches: matchFields.optional(),
        actions: z.array(Action),
        ...timeouts,
      })
      .strict()
      .describe("{container_id} and {port} in any value are the container's id and its OVS port number"),
  })
  .strict();
export type Policy = z.infer<typeof Policy>;

export const Bridge = z
  .object({
    name: z.string().regex(NAME),
    flows: z.array(Flow).optional(),
    controller_endpoint: z
      .string()
      .regex(/^(tcp|ssl|unix|ptcp|pssl|punix):[A-Za-z0-9_.:/\-[\]]{1,200}$/)
      .optional(),
  })
  .strict();

export const OpenflowSection = z
  .object({
    controller_endpoint: z
      .string()
      .regex(/^(tcp|ssl|unix|ptcp|pssl|punix):[A-Za-z0-9_.:/\-[\]]{1,200}$/)
      .meta({ 'x-error': 'an OVS controller target, e.g. tcp:127.0.0.1:6653' })
      .optional()
      .describe('the controller every bridge of the section connects to'),
    auto_discover_containers: z
      .boolean()
      .optional()
      .describe(
        'true: policies also cover the containers lxc finds running, not only those the document names',
      ),
    flow_policies: z.array(Policy).optional(),
    bridges: z.array(Bridge).optional(),
  })
  .strict();
export type OpenflowSection = z.infer<typeof OpenflowSection>;
