import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  cacheKey,
  cachedEmbedder,
  EmbeddingCache,
  MemoryTier,
  normaliseText,
  normaliseTextSlowly,
} from './cache.js';
import type { Embedder } from './embedder.js';
import { openOnnxBert, readOnnxBertFolder } from './onnx-bert.js';
import { tinyBert } from './tiny-bert.js';

let root: string;
let modelA: Embedder;
let modelB: Embedder;

async function tinyModel(name: string, seed: number): Promise<Embedder> {
  const dir = join(root, name);
  const m = tinyBert(16, 512, seed);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  writeFileSync(join(dir, 'model.onnx'), m.onnx);
  writeFileSync(join(dir, 'tokenizer.json'), m.tokenizerJson);
  return openOnnxBert(readOnnxBertFolder(dir));
}

function flip(b: Buffer, at: number): void {
  b.writeUInt8(b.readUInt8(at) ^ 0xff, at);
}

/** Counts the texts it is asked to embed. */
function counting(inner: Embedder): Embedder & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    model: inner.model,
    embed: (texts) => {
      asked.push(...texts);
      return inner.embed(texts);
    },
    close: () => Promise.resolve(),
  };
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'opdbus-embed-cache-'));
  modelA = await tinyModel('a', 1);
  modelB = await tinyModel('b', 2);
});

afterAll(async () => {
  await modelA.close();
  await modelB.close();
  rmSync(root, { recursive: true, force: true });
});

describe('the memory tier', () => {
  it('is an LRU over one slab: the least recently used goes first', () => {
    const lru = new MemoryTier(2, 2);
    lru.put('a', Float32Array.of(1, 0));
    lru.put('b', Float32Array.of(0, 1));
    expect(lru.get('a')).toEqual(Float32Array.of(1, 0));
    lru.put('c', Float32Array.of(1, 1));
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('a')).toEqual(Float32Array.of(1, 0));
    expect(lru.get('c')).toEqual(Float32Array.of(1, 1));
    expect(lru.stats.evictions).toBe(1);
    // a returned vector is a copy: changing it changes nothing cached
    const got = lru.get('a');
    if (got !== undefined) got[0] = 42;
    expect(lru.get('a')).toEqual(Float32Array.of(1, 0));
  });
});

describe('the embedding cache', () => {
  it('keys by model and normalised text', () => {
    expect(normaliseText('  a \t b\n')).toBe('a b');
    expect(cacheKey('m', 'Cafe\u0301  x')).toBe(cacheKey('m', 'Café x'));
    expect(cacheKey('m1', 'x')).not.toBe(cacheKey('m2', 'x'));
  });

  it('normalises through its fast path exactly as NFC + whitespace folding does', () => {
    const char = fc.constantFrom(
      'a',
      'Z',
      ' ',
      '  ',
      '\t',
      '\n',
      '\u00a0',
      '\u2028',
      'e\u0301',
      'é',
      '\u3000',
      '漢',
      '.',
      '\u{1f600}',
    );
    const text = fc.oneof(
      fc.string(),
      fc.string({ unit: 'grapheme' }),
      fc.array(char).map((a) => a.join('')),
    );
    let runs = 0;
    fc.assert(
      fc.property(text, (t) => {
        runs++;
        expect(normaliseText(t)).toBe(normaliseTextSlowly(t));
      }),
      { seed: 4242, numRuns: 3000 },
    );
    expect(runs).toBe(3000);
  });

  it('answers from memory, then from disk after a restart, and embeds only misses', async () => {
    const dir = join(root, 'c1');
    const a = counting(modelA);
    let cache = new EmbeddingCache(modelA.model, { dir });
    const texts = ['wireguard wg0 port changed', 'hostname set', 'wireguard   wg0 port changed'];
    const first = await cachedEmbedder(a, cache).embed(texts);
    expect(a.asked).toEqual(['wireguard wg0 port changed', 'hostname set']);
    expect(first[2]).toEqual(first[0]);
    expect(first[0]).toEqual((await modelA.embed(['wireguard wg0 port changed']))[0]);
    await cachedEmbedder(a, cache).embed(texts);
    expect(a.asked).toHaveLength(2);
    expect(cache.stats().memory.hits).toBe(3);
    cache.close();
    cache = new EmbeddingCache(modelA.model, { dir });
    const again = await cachedEmbedder(a, cache).embed(texts);
    expect(a.asked).toHaveLength(2);
    expect(again).toEqual(first);
    const s = cache.stats();
    expect(s.persistent.hits).toBe(2);
    expect(s.memory.hits).toBe(1);
    expect(s.persistent.latencyUs.counts.reduce((x, y) => x + y, 0)).toBe(2);
    cache.close();
  });

  it('never returns a vector cached under model A once model B is in use', async () => {
    const dir = join(root, 'c2');
    const cache = new EmbeddingCache(modelA.model, { dir });
    await cachedEmbedder(modelA, cache).embed(['bridge ovs0 added']);
    expect(cache.get('bridge ovs0 added')).toBeDefined();
    cache.useModel(modelB.model);
    expect(cache.get('bridge ovs0 added')).toBeUndefined();
    const b = counting(modelB);
    const [vb] = await cachedEmbedder(b, cache).embed(['bridge ovs0 added']);
    expect(b.asked).toEqual(['bridge ovs0 added']);
    expect(vb).toEqual((await modelB.embed(['bridge ovs0 added']))[0]);
    expect(vb).not.toEqual((await modelA.embed(['bridge ovs0 added']))[0]);
    // the persistent tier itself refuses a key under another model id
    const key = cacheKey(modelB.model.id, 'bridge ovs0 added');
    expect(cache.persistent.get(key, modelA.model.id)).toBeUndefined();
    expect(cache.persistent.textsNotOf(modelB.model.id, 10)).toEqual(['bridge ovs0 added']);
    cache.close();
  });

  it('computes a text once for concurrent callers, and an embedder of the old model never touches the cache', async () => {
    const dir = join(root, 'c5');
    const cache = new EmbeddingCache(modelA.model, { dir });
    const a = counting(modelA);
    const e = cachedEmbedder(a, cache);
    // a backfill and a re-embedding meet on the same texts while both are in flight
    const [one, two] = await Promise.all([
      e.embed(['lxc vi101 added', 'units cron.service stopped']),
      e.embed(['units cron.service stopped', 'lxc vi101 added', 'hostname set']),
    ]);
    expect([...a.asked].sort()).toEqual(['hostname set', 'lxc vi101 added', 'units cron.service stopped']);
    expect(two?.[1]).toEqual(one?.[0]);
    // after `model use B` the cache is on B: A's embedder (still held by someone) neither reads nor writes it
    cache.useModel(modelB.model);
    const [va] = await e.embed(['lxc vi101 added']);
    expect(va).toEqual((await modelA.embed(['lxc vi101 added']))[0]);
    expect(a.asked.filter((t) => t === 'lxc vi101 added')).toHaveLength(2);
    expect(cache.get('lxc vi101 added')).toBeUndefined();
    cache.close();
  });

  it('stays within its size bound, evicting least recently used', async () => {
    const dir = join(root, 'c3');
    const bound = 64 * 64; // 64 vectors of 16 floats
    const cache = new EmbeddingCache(modelA.model, { dir, persistentBytes: bound, memoryEntries: 8 });
    const texts = Array.from({ length: 200 }, (_, i) => `peer ${i} added`);
    const e = cachedEmbedder(modelA, cache);
    for (let i = 0; i < texts.length; i += 10) await e.embed(texts.slice(i, i + 10));
    const s = cache.stats();
    expect(statSync(join(dir, 'vectors.bin')).size).toBeLessThanOrEqual(bound);
    expect(s.persistent.evictions).toBeGreaterThan(100);
    expect(s.memory.evictions).toBeGreaterThan(100);
    expect(s.persistent.entries).toBeLessThan(64);
    // the newest survive, with the right vectors
    expect(cache.persistent.get(cacheKey(modelA.model.id, 'peer 199 added'), modelA.model.id)).toEqual(
      (await modelA.embed(['peer 199 added']))[0],
    );
    cache.close();
  });

  it('detects a corrupt vector file and a truncated one, says so and rebuilds', async () => {
    const dir = join(root, 'c4');
    let cache = new EmbeddingCache(modelA.model, { dir });
    const texts = Array.from({ length: 20 }, (_, i) => `unit ${i} restarted`);
    const want = await cachedEmbedder(modelA, cache).embed(texts);
    cache.close();
    const file = join(dir, 'vectors.bin');
    const bytes = readFileSync(file);
    flip(bytes, 8 + 5 * 64 + 3); // the sixth vector
    writeFileSync(file, bytes);
    const messages: string[] = [];
    cache = new EmbeddingCache(modelA.model, { dir, onMessage: (m) => messages.push(m) });
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(
      /vectors\.bin: 1 vectors fail their CRC: rebuilt, 19 vectors kept, 1 dropped/,
    );
    const a = counting(modelA);
    const got = await cachedEmbedder(a, cache).embed(texts);
    expect(a.asked).toEqual(['unit 5 restarted']);
    expect(got).toEqual(want);
    cache.close();

    truncateSync(file, statSync(file).size - 100);
    cache = new EmbeddingCache(modelA.model, { dir, onMessage: (m) => messages.push(m) });
    expect(messages[1]).toMatch(/is truncated .*2 vectors lie past its end\): rebuilt, 18 vectors kept/);
    expect(cache.stats().lastRebuild).toMatch(/truncated/);
    const b = counting(modelA);
    expect(await cachedEmbedder(b, cache).embed(texts)).toEqual(want);
    expect(b.asked).toHaveLength(2);
    cache.close();

    // damage while open is caught on read
    cache = new EmbeddingCache(modelA.model, { dir, onMessage: (m) => messages.push(m) });
    const now = readFileSync(file);
    flip(now, 8 + 2);
    writeFileSync(file, now);
    const first = texts.find((t) => {
      const k = cacheKey(modelA.model.id, t);
      return cache.persistent.get(k, modelA.model.id) === undefined;
    });
    expect(first).toBeDefined();
    expect(messages[2]).toMatch(/fail their CRC: rebuilt, 19 vectors kept, 1 dropped/);
    cache.close();
  });
});
