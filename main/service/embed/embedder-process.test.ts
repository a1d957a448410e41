import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosine } from './embedder.js';
import { EmbedderFailure, EmbedderProcess } from './embedder-process.js';
import { readOnnxBertFolder } from './onnx-bert.js';
import { tinyBert } from './tiny-bert.js';

// USE-lite runs ~8 ms a text, slow enough to kill the process in the middle of a batch.
let use: EmbedderProcess;
const reports: string[] = [];

beforeAll(async () => {
  use = await EmbedderProcess.start(
    { kind: 'use-lite' },
    { batchSize: 16, maxQueuedTexts: 48, batchTimeoutMs: 4000, onReport: (m) => reports.push(m) },
  );
});

afterAll(async () => {
  await use.close();
});

function statusOf(pid: number): Record<string, string> {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .map((l) => l.split(':\t'))
      .map(([k, v]) => [k ?? '', (v ?? '').trim()]),
  );
}

const texts = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => `${tag}: wireguard peer ${i} changed its listen port to ${51820 + i}`);

async function untilBatches(p: EmbedderProcess, n: number): Promise<void> {
  while (p.stats().batches < n) await new Promise((r) => setTimeout(r, 5));
}

describe('the embedder process', () => {
  it('runs as an unprivileged uid with no supplementary groups (read from /proc)', () => {
    const pid = use.pid ?? -1;
    const status = statusOf(pid);
    const expected = process.getuid?.() === 0 ? '65534' : String(process.getuid?.());
    expect(status['Uid']?.split(/\s+/)).toEqual([expected, expected, expected, expected]);
    expect(status['Gid']?.split(/\s+/)[0]).toBe(
      process.getuid?.() === 0 ? '65534' : String(process.getgid?.()),
    );
    if (process.getuid?.() === 0) expect(status['Groups']).toBe('');
    expect(use.stats().uid).toBe(Number(expected));
    expect(use.model.runtime).toBe('tfjs-use-lite');
  });

  it('loses no text when it is killed in the middle of a batch', async () => {
    const input = texts(96, 'kill');
    const pending = use.embed(input);
    await untilBatches(use, use.stats().batches + 1);
    const victim = use.pid ?? -1;
    const restarts = use.stats().restarts;
    process.kill(victim, 'SIGKILL');
    const got = await pending;
    expect(got).toHaveLength(96);
    expect(use.stats().restarts).toBe(restarts + 1);
    expect(use.pid).not.toBe(victim);
    expect(
      reports.some((r) =>
        r.includes(`pid ${victim}) exited (SIGKILL) during a batch of 16 texts: restarting`),
      ),
    ).toBe(true);
    // each text has its own vector, in order: the same as embedding it again now
    const again = await use.embed(input);
    got.forEach((v, i) => expect(cosine(v, again[i] ?? new Float32Array())).toBeGreaterThan(0.9999));
    expect(cosine(got[0] ?? new Float32Array(), got[1] ?? new Float32Array())).toBeLessThan(0.9999);
  });

  it('restarts a hung process and retries its batch', async () => {
    const before = use.stats();
    const pending = use.embed(texts(32, 'hang'));
    await untilBatches(use, before.batches + 1);
    const victim = use.pid ?? -1;
    process.kill(victim, 'SIGSTOP');
    const got = await pending;
    expect(got).toHaveLength(32);
    expect(use.stats().retried).toBe(before.retried + 1);
    expect(reports.some((r) => r.includes(`pid ${victim}) hung on a batch of 16 texts`))).toBe(true);
  });

  it('reports a batch that fails twice and goes on with the next', async () => {
    const before = use.stats();
    const first = use.embed(texts(16, 'twice'));
    const second = use.embed(texts(16, 'after'));
    for (let kill = 0; kill < 2; kill++) {
      const pid = await (async () => {
        for (;;) {
          const p = use.pid;
          if (p !== undefined && use.stats().restarts === before.restarts + kill) return p;
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await new Promise((r) => setTimeout(r, 30));
      process.kill(pid, 'SIGKILL');
    }
    await expect(first).rejects.toThrow(EmbedderFailure);
    await expect(first).rejects.toThrow(/a batch of 16 texts got no vectors after 2 attempts/);
    expect(await second).toHaveLength(16);
    expect(use.stats().failedBatches).toBe(before.failedBatches + 1);
  });

  it('keeps its queue bounded: a large backfill waits for room', async () => {
    let maxQueued = 0;
    const sampler = setInterval(() => (maxQueued = Math.max(maxQueued, use.stats().queuedTexts)), 2);
    const got = await use.embed(texts(200, 'backfill'));
    clearInterval(sampler);
    expect(got).toHaveLength(200);
    expect(maxQueued).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThanOrEqual(48);
  });

  it('runs an ONNX model folder whose bytes the core read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'opdbus-embed-proc-'));
    try {
      const model = tinyBert();
      mkdirSync(join(dir, 'tiny'));
      writeFileSync(join(dir, 'tiny', 'model.onnx'), model.onnx);
      writeFileSync(join(dir, 'tiny', 'tokenizer.json'), model.tokenizerJson);
      const bytes = readOnnxBertFolder(join(dir, 'tiny'));
      const onnx = await EmbedderProcess.start({ kind: 'onnx-bert', bytes });
      try {
        expect(onnx.model).toMatchObject({ id: bytes.id, name: 'tiny', runtime: 'onnx-bert', dims: 16 });
        const [v] = await onnx.embed(['hostname changed']);
        expect(v?.length).toBe(16);
      } finally {
        await onnx.close();
      }
      // a model file the process cannot parse fails its load, with onnxruntime's reason
      await expect(
        EmbedderProcess.start({ kind: 'onnx-bert', bytes: { ...bytes, model: new Uint8Array([1, 2, 3]) } }),
      ).rejects.toThrow(/protobuf parsing failed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
