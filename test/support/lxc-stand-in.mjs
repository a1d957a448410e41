// NOT the lxc plugin: a stand-in the openflow tests install as "lxc" from OP_DBUS_PLUGIN_PATH (the
// real one is written on another branch). Its query returns the containers listed in the JSON file
// its [config] names, each with `id` and `veth` (the host end of the container's veth, its OVS port),
// which is all the openflow plugin reads of lxc. It manages nothing: every diff is a no-op.
import { readFileSync } from 'node:fs';

const plugin = {
  async available() {
    return { available: true };
  },
  async query(ctx) {
    return { containers: JSON.parse(readFileSync(ctx.config.containers_file, 'utf8')) };
  },
  async diff() {
    return { resources: [] };
  },
  async checkpoint() {
    return {};
  },
  async apply() {
    return { changed: 0 };
  },
  async verify() {
    return { drift: [] };
  },
  async rollback() {},
};

export const schema = { type: 'object' };
export default { plugin, schema };
