export { ProbeHost } from '../../test/support/probe-host.js';
