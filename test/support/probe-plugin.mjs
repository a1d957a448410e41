// A plugin the tests install from OP_DBUS_PLUGIN_PATH, as a user installs one: real code behind the
// plugin contract that keeps its "host" in a JSON file under its [config] root (which the tests read
// directly) and logs each call it receives to calls.log there, so order, rollback, cancellation and
// deadlines are seen from outside the core. Its section asks it to misbehave on purpose:
//   { values: {k: v}, irreversible: [k...], fail_apply: bool, delay_ms: n, honour_signal: bool, call: BusCall }
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const stateFile = (ctx) => join(ctx.config.root, `${ctx.plugin}.json`);
const log = (ctx, what) => appendFileSync(join(ctx.config.root, 'calls.log'), `${ctx.plugin}.${what}\n`);
const read = (ctx) => (existsSync(stateFile(ctx)) ? JSON.parse(readFileSync(stateFile(ctx), 'utf8')) : {});
const write = (ctx, values) => {
  writeFileSync(`${stateFile(ctx)}.tmp`, JSON.stringify(values));
  renameSync(`${stateFile(ctx)}.tmp`, stateFile(ctx));
};

function wait(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });
}

const plugin = {
  async available(ctx) {
    return existsSync(ctx.config.root)
      ? { available: true }
      : { available: false, reason: `${ctx.config.root} is missing` };
  },
  async query(ctx) {
    return { values: read(ctx) };
  },
  async diff(current, desired, ctx) {
    const have = current.values ?? {};
    const irreversible = desired.irreversible ?? [];
    const after = Object.keys(ctx.after).sort().join(',');
    if (after !== '') log(ctx, `diff(after:${after})`);
    return {
      resources: Object.entries(desired.values ?? {}).map(([k, v]) => ({
        id: k,
        action: have[k] === v ? 'noop' : have[k] === undefined ? 'create' : 'modify',
        changes:
          have[k] === v ? [] : [{ path: `/plugins/${ctx.plugin}/values/${k}`, before: have[k], after: v }],
        ...(irreversible.includes(k) ? { irreversible: true } : {}),
      })),
    };
  },
  async checkpoint(_desired, ctx) {
    log(ctx, 'checkpoint');
    return { values: read(ctx) };
  },
  async apply(diff, desired, ctx) {
    const ids = diff.resources.filter((r) => r.action !== 'noop').map((r) => r.id);
    log(ctx, `apply(${ids.join(',')})`);
    if (desired.call !== undefined) await ctx.bus.call(desired.call);
    const values = read(ctx);
    for (const id of ids) values[id] = desired.values[id];
    write(ctx, values);
    if (desired.delay_ms !== undefined)
      await wait(desired.delay_ms, desired.honour_signal === false ? undefined : ctx.signal);
    if (desired.fail_apply === true) throw new Error(`${ctx.plugin} was told to fail`);
    return { changed: ids.length };
  },
  async verify(desired, ctx) {
    const have = read(ctx);
    return {
      drift: Object.entries(desired.values ?? {})
        .filter(([k, v]) => have[k] !== v)
        .map(([k, v]) => ({ path: `/plugins/${ctx.plugin}/values/${k}`, expected: v, actual: have[k] })),
    };
  },
  async rollback(checkpoint, ctx) {
    log(ctx, 'rollback');
    write(ctx, checkpoint.values);
  },
};

export const schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    values: { type: 'object', additionalProperties: { type: 'string' } },
    irreversible: { type: 'array', items: { type: 'string' } },
    fail_apply: { type: 'boolean' },
    delay_ms: { type: 'integer', minimum: 0 },
    honour_signal: { type: 'boolean' },
    call: { type: 'object' },
  },
};

export default { schema, plugin };
