/**
 * What the core puts in place of a value that a plugin's schema marks `"x-secret": true`, in every
 * state, plan and audit payload it returns. Clients recognise it so they never send it back as a value.
 */
export const REDACTED_VALUE = '«redacted»';
