/**
 * The contract between the core and its clients (CLI, `serve`, the Electron main, the renderer):
 * the Manager1 interface, payload schemas, error codes and the console's CSP. It imports nothing of the project.
 */
export * from './errors.js';
export * from './payloads.js';
export * from './models.js';
export * from './manager1.js';
export * from './relay.js';
export * from './csp.js';
export * from './redaction.js';
export * from './bundles.js';
