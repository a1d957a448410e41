import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzz } from '../../../test/support/fuzz.js';
import { firstInvalidUtf8 } from './document-file.js';

// The bytes of a file the user names: the offset readDocument reports for invalid UTF-8 is right exactly
// when the bytes before it are UTF-8 and the file is not, whatever the bytes.
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.string({ unit: 'binary', maxLength: 32 }).chain((s) =>
    fc.tuple(fc.nat(Buffer.byteLength(s)), fc.integer({ min: 0x80, max: 0xff })).map(([at, b]) => {
      const buf = Buffer.from(s, 'utf8');
      if (buf.length > 0) buf[at % buf.length] = b;
      return new Uint8Array(buf);
    }),
  ),
);

describe('firstInvalidUtf8 under fuzzing', () => {
  it('agrees with Node (isUtf8) on every input, and the prefix before the offset is UTF-8', () => {
    fuzz(
      'document bytes (UTF-8 check)',
      bytes,
      (b) => {
        const at = firstInvalidUtf8(b);
        expect(at === b.length).toBe(isUtf8(b));
        expect(isUtf8(b.subarray(0, at))).toBe(true);
      },
      { seed: 3, runs: 20_000, perInputMs: 250 },
    );
  });
});
