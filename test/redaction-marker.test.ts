import { describe, expect, it } from 'vitest';
import { REDACTED_VALUE } from '../main/common/contract/index.js';
import { REDACTED } from '../main/service/engine/redact.js';

// Clients (the console's "Start from host state") recognise redacted values by the contract's marker;
// the engine writes its own constant. Until the engine imports the contract's, they must not drift.
describe('the redaction marker', () => {
  it("is the same in the engine and in the contract's REDACTED_VALUE", () => {
    expect(REDACTED).toBe(REDACTED_VALUE);
  });
});
