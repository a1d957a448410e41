import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorPayload } from '../main/common/contract/index.js';
import { firstInvalidUtf8, MAX_DOCUMENT_BYTES, readDocument } from '../main/client/cli/document-file.js';
import { CLI } from './support/sandbox.js';

// A careless admin's input to the CLI: each is refused at once, naming the file (and where in it),
// before any core is asked. `apply` reads its document before it connects, so no core runs here.
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'opdbus-cli-input-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function apply(file: string): { code: number | null; error: ErrorPayload; ms: number } {
  const started = Date.now();
  const r = spawnSync(process.execPath, [CLI, 'apply', file, '--json'], {
    encoding: 'utf8',
    env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent/bus', OP_DBUS_WITNESS: 'off' },
    // before the fix a FIFO blocked forever and /dev/zero read 16.8 GB: the timeout makes that a failure
    timeout: 20_000,
  });
  expect(r.signal, r.stderr).toBeNull();
  return {
    code: r.status,
    error: (JSON.parse(r.stdout) as { error: ErrorPayload }).error,
    ms: Date.now() - started,
  };
}

describe('op-dbus apply <file>: what it refuses to read', () => {
  it('a device (/dev/zero) and a FIFO, without reading or blocking', () => {
    const zero = apply('/dev/zero');
    expect(zero.code).toBe(1);
    expect(zero.error).toMatchObject({ code: 'InvalidArgument', where: { file: '/dev/zero' } });
    expect(zero.error.message).toMatch(/a device, not a regular file/);
    const fifo = join(dir, 'doc.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const r = apply(fifo);
    expect(r.error.message).toMatch(/a FIFO, not a regular file/);
    expect(apply(dir).error.message).toMatch(/a directory/);
  });

  it('a file larger than the core would take (50 MB), at once', () => {
    const big = join(dir, 'big.json');
    writeFileSync(big, '');
    truncateSync(big, 50 * 1024 * 1024);
    const r = apply(big);
    expect(r.error.message).toMatch(`at most ${MAX_DOCUMENT_BYTES} bytes`);
    expect(r.ms).toBeLessThan(5_000);
  });

  it('invalid UTF-8, with its byte offset, line and column, instead of U+FFFD', () => {
    const bad = join(dir, 'latin1.json');
    writeFileSync(
      bad,
      Buffer.concat([
        Buffer.from('{"version": 1,\n "plugins": {"hostname": {"location": "B'),
        Buffer.from([0xfc]),
        Buffer.from('ro"}}}'),
      ]),
    );
    const r = apply(bad);
    expect(r.error.message).toMatch(/not UTF-8: .*0xfc.* at byte offset 55/);
    expect(r.error.where).toMatchObject({ file: bad, line: 2, column: 41 });
  });
});

describe('readDocument', () => {
  it('accepts a UTF-8 byte order mark and strips it', () => {
    const file = join(dir, 'bom.json');
    writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"version":1}')]));
    expect(readDocument(file)).toBe('{"version":1}');
  });

  it('reads a file of exactly the limit, and refuses one byte more', () => {
    const file = join(dir, 'edge.json');
    writeFileSync(file, Buffer.alloc(MAX_DOCUMENT_BYTES, 0x20));
    expect(readDocument(file)).toHaveLength(MAX_DOCUMENT_BYTES);
    writeFileSync(file, Buffer.alloc(MAX_DOCUMENT_BYTES + 1, 0x20));
    expect(() => readDocument(file)).toThrow(/at most/);
  });
});

describe('firstInvalidUtf8', () => {
  it('finds overlong forms, encoded surrogates, code points above U+10FFFF and cut sequences', () => {
    const at = (...bytes: number[]): number => firstInvalidUtf8(Uint8Array.from(bytes));
    expect(at(0x61, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80)).toBe(8); // a € 😀: valid
    expect(at(0x61, 0xc0, 0xaf)).toBe(1); // overlong "/"
    expect(at(0xe0, 0x80, 0xaf)).toBe(0); // overlong, three bytes
    expect(at(0x61, 0xed, 0xa0, 0x80)).toBe(1); // U+D800
    expect(at(0xf4, 0x90, 0x80, 0x80)).toBe(0); // U+110000
    expect(at(0x61, 0x62, 0xe2, 0x82)).toBe(2); // cut at the end
    expect(at(0x80)).toBe(0); // a continuation byte alone
  });
});
