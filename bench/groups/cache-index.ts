import { createHash, hash as oneShotHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xxh3, xxh64 } from '@node-rs/xxhash';
import Database from 'better-sqlite3';
import { open as openLmdb } from 'lmdb';
import xxhashWasm from 'xxhash-wasm';
import type { BenchGroup, StartedGroup } from '../harness.js';
import { seededRandom } from '../statistics.js';

const KEYS_PER_OP = 1_000;
const ENTRIES = 100_000;
const MODEL_ID = 'sha256:5f1c…/ngram-384@1';

/** Realistic cache keys: model id + a normalised audit summary of ~100 bytes. */
function texts(n: number, seed: number): string[] {
  const rnd = seededRandom(seed);
  const words = [
    'apply',
    'plan',
    'hostname',
    'wireguard',
    'wg0',
    'peer',
    'port',
    '51820',
    'ovsbr0',
    'vi101',
    'nginx.service',
    'enabled',
    'location',
    'rack',
    'drift',
    'verify',
  ];
  return Array.from({ length: n }, (_, i) => {
    const w = Array.from({ length: 12 }, () => words[Math.floor(rnd() * words.length)]).join(' ');
    return `${MODEL_ID}\u0000${w} #${i}`;
  });
}

/**
 * The seed's questions 3 and "SHA-256 vs xxHash": what a cache key costs to compute, and what a
 * lookup costs in an in-process Map, SQLite (rowid table + unique index on the key, prepared
 * statement) and LMDB (memory-mapped B+tree), at 100k entries with the pages warm.
 */
export const cacheIndexGroup: BenchGroup = {
  name: 'cache-index',
  description:
    `Key hashing: ${KEYS_PER_OP} keys (model id + ~100-byte text) per operation with SHA-256 (createHash, crypto.hash one-shot), ` +
    `xxh64 (WebAssembly), xxh3-64 and xxh64 (native, @node-rs/xxhash). Lookups: ${KEYS_PER_OP} random hits per operation among ` +
    `${ENTRIES} entries (32-byte key → 12-byte location) in a Map, SQLite and LMDB.`,
  baseline: 'sha256-createHash',
  start: async (): Promise<StartedGroup> => {
    const dir = mkdtempSync(join(tmpdir(), 'opdbus-bench-cache-index-'));
    const sample = texts(KEYS_PER_OP, 7).map((t) => Buffer.from(t, 'utf8'));
    const wasm = await xxhashWasm();
    const keys = texts(ENTRIES, 11).map((t) => createHash('sha256').update(t).digest());
    const value = (i: number): Buffer => {
      const b = Buffer.alloc(12);
      b.writeBigUInt64LE(BigInt(i) * 1536n, 0);
      b.writeUInt32LE(1536, 8);
      return b;
    };
    const map = new Map<string, Buffer>();
    keys.forEach((k, i) => map.set(k.toString('hex'), value(i)));
    const sqlite = new Database(join(dir, 'index.sqlite'));
    sqlite.pragma('journal_mode = WAL');
    sqlite.exec(
      'CREATE TABLE entries (id INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, location BLOB NOT NULL)',
    );
    const insert = sqlite.prepare('INSERT INTO entries (key, location) VALUES (?, ?)');
    sqlite.transaction(() => keys.forEach((k, i) => insert.run(k, value(i))))();
    const select = sqlite.prepare('SELECT location FROM entries WHERE key = ?').pluck();
    const lmdb = openLmdb<Buffer, Buffer>({
      path: join(dir, 'lmdb'),
      keyEncoding: 'binary',
      encoding: 'binary',
    });
    await lmdb.transaction(() => keys.forEach((k, i) => lmdb.put(k, value(i))));
    const rnd = seededRandom(3);
    const probes = Array.from({ length: KEYS_PER_OP }, () => keys[Math.floor(rnd() * ENTRIES)] as Buffer);
    const probeHex = probes.map((k) => k.toString('hex'));
    let sink = 0;
    const hashCase = (name: string, fn: (b: Buffer) => void) => ({
      name,
      run: () => {
        for (const b of sample) fn(b);
        return Promise.resolve();
      },
    });
    const lookupCase = (name: string, fn: (i: number) => Buffer | undefined) => ({
      name,
      run: () => {
        for (let i = 0; i < KEYS_PER_OP; i++) {
          const v = fn(i);
          if (v === undefined) throw new Error(`${name}: key ${i} not found`);
          sink += v.length;
        }
        return Promise.resolve();
      },
    });
    return {
      cases: [
        hashCase('sha256-createHash', (b) => void createHash('sha256').update(b).digest()),
        hashCase('sha256-oneshot', (b) => void oneShotHash('sha256', b, 'buffer')),
        hashCase('xxh64-wasm', (b) => void wasm.h64Raw(b)),
        hashCase('xxh64-native', (b) => void xxh64(b)),
        hashCase('xxh3-native', (b) => void xxh3.xxh64(b)),
        lookupCase('lookup-map', (i) => map.get(probeHex[i] as string)),
        lookupCase('lookup-sqlite', (i) => select.get(probes[i]) as Buffer | undefined),
        lookupCase('lookup-lmdb', (i) => lmdb.getBinary(probes[i] as Buffer) ?? undefined),
      ],
      notes: [
        `each operation: ${KEYS_PER_OP} keys; per-key cost = median / ${KEYS_PER_OP}`,
        'lookup-map includes the hex conversion a Map of strings needs; SQLite and LMDB take the 32-byte key as is',
      ],
      notesAfter: () => Promise.resolve([`(checksum ${sink % 997})`]),
      stop: async () => {
        sqlite.close();
        await lmdb.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};
