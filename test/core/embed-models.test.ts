import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddingStats, ErrorPayload } from '../../main/common/contract/index.js';
import { tinyBert } from '../../main/service/embed/tiny-bert.js';
import { useLiteFiles } from '../../main/service/embed/use-lite.js';
import { TestSandbox } from '../support/sandbox.js';

// Models as a user manages them, against a real core on the development host: `op-dbus model …`
// through D-Bus and polkit. Read back independently: the model id recomputed here from the files,
// the embedder process's uid from /proc, the vector file's size on disk.
let sb: TestSandbox;
let models: string;

beforeAll(async () => {
  sb = await TestSandbox.start();
  models = join(sb.dir, '..', 'models');
  for (const [name, seed] of [
    ['tiny-a', 1],
    ['tiny-b', 2],
  ] as const) {
    const m = tinyBert(16, 512, seed);
    mkdirSync(join(models, name), { recursive: true });
    writeFileSync(join(models, name, 'model.onnx'), m.onnx);
    writeFileSync(join(models, name, 'tokenizer.json'), m.tokenizerJson);
  }
  mkdirSync(join(models, 'no-tokenizer'));
  writeFileSync(join(models, 'no-tokenizer', 'model.onnx'), tinyBert(4, 8).onnx);
  mkdirSync(join(models, 'empty'));
}, 120_000);

afterAll(async () => {
  await sb.stop();
});

function json<T>(args: string[]): T {
  const r = sb.cli([...args, '--json']);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as T;
}

function failure(args: string[]): ErrorPayload {
  const r = sb.cli([...args, '--json']);
  expect(r.code, r.stdout).toBe(1);
  return (JSON.parse(r.stdout) as { error: ErrorPayload }).error;
}

/** The model id as documented: SHA-256 over each file's name, length and bytes, in order. */
function idOf(files: string[]): string {
  const h = createHash('sha256');
  for (const f of files) {
    const b = readFileSync(f);
    h.update(`${f.split('/').at(-1) ?? ''}\0${b.length}\0`).update(b);
  }
  return h.digest('hex');
}

describe('op-dbus model', () => {
  it('lists USE-lite as the default, named by the SHA-256 of its files', () => {
    const list = json<{ models: { id: string; name: string; dims: number }[]; current: string }>([
      'model',
      'list',
    ]);
    expect(list.current).toBe('use-lite');
    expect(list.models).toEqual([
      expect.objectContaining({
        name: 'use-lite',
        dims: 512,
        runtime: 'tfjs-use-lite',
        id: idOf(useLiteFiles()),
      }),
    ]);
    const info = json<EmbeddingStats>(['model', 'info']);
    expect(info.model.label).toMatch(/Universal Sentence Encoder lite/);
    // the audit search embeds the log from the start, and only through the embedder process
    expect(info.search?.queued).toBe(0);
    if (info.process !== undefined) expect(info.process.uid).toBe(65534);
  });

  it('refuses a folder that lacks what its runtime needs, naming the missing file', () => {
    const empty = failure(['model', 'use', join(models, 'empty')]);
    expect(empty.code).toBe('InvalidArgument');
    expect(empty.message).toMatch(/has no model\.onnx/);
    const noTok = failure(['model', 'use', join(models, 'no-tokenizer')]);
    expect(noTok.message).toMatch(/neither tokenizer\.json nor vocab\.txt/);
    expect(noTok.where?.file).toBe(join(models, 'no-tokenizer', 'tokenizer.json'));
    expect(failure(['model', 'use', 'no-such-model']).message).toMatch(/no model named "no-such-model"/);
    expect(json<{ current: string }>(['model', 'list']).current).toBe('use-lite');
  });

  it('is refused to a user polkit does not allow', () => {
    const r = sb.cli(['model', 'use', 'use-lite', '--json'], { uid: 'nobody' });
    expect(r.code).toBe(1);
    const error = (JSON.parse(r.stdout) as { error: ErrorPayload }).error;
    expect(error.code).toBe('NotAuthorized');
    expect(error.message).toMatch(/not authorised: org\.opdbus\.manage-models/);
  });

  it('re-embeds in the background on a change, and never serves model A vectors under model B', () => {
    for (let i = 0; i < 3; i++) expect(sb.cli(['query', '--json']).code).toBe(0);
    const a = json<{ model: { id: string; dims: number }; reembed: { state: string; total: number } }>([
      'model',
      'use',
      join(models, 'tiny-a'),
      '--wait',
    ]);
    expect(a.model.id).toBe(
      idOf([join(models, 'tiny-a', 'model.onnx'), join(models, 'tiny-a', 'tokenizer.json')]),
    );
    expect(a.model.dims).toBe(16);
    expect(a.reembed.state).toBe('done');
    const n = a.reembed.total;
    expect(n).toBeGreaterThan(0);
    const infoA = json<EmbeddingStats>(['model', 'info']);
    expect(infoA.process?.texts).toBe(n);
    // the process runs unprivileged: its uid as /proc says
    const status = readFileSync(`/proc/${infoA.process?.pid ?? -1}/status`, 'utf8');
    expect(/^Uid:\s+(\d+)\s+(\d+)/m.exec(status)?.slice(1)).toEqual(['65534', '65534']);

    // without --wait: the change returns at once, and `model info --watch` follows it to the end
    const b = json<{ model: { id: string }; reembed: { state: string } }>([
      'model',
      'use',
      join(models, 'tiny-b'),
    ]);
    expect(b.reembed.state).toBe('running');
    const watched = sb.cli(['model', 'info', '--watch']);
    expect(watched.code, watched.stderr).toBe(0);
    expect(watched.stdout).toMatch(/re-embedding: done, (\d+)\/\1 texts \(100%\)/);
    expect(watched.stdout).toMatch(/audit index: (\d+)\/\1 entries embedded \(100%\), 0 queued/);
    const infoB = json<EmbeddingStats>(['model', 'info']);
    expect(infoB.model.id).toBe(b.model.id);
    expect(infoB.search).toMatchObject({ model: b.model.id, queued: 0 });
    // every text computed again with B: A's cached vectors were not handed out
    expect(infoB.process?.texts).toBe(infoB.reembed.total);
    expect(infoB.reembed.total).toBeGreaterThanOrEqual(n);
    expect(infoB.cache?.persistent.hits).toBe(0);

    // back to A by name: its vectors are still on disk and serve it without embedding anything
    const again = json<{ reembed: { state: string; total: number } }>(['model', 'use', 'tiny-a', '--wait']);
    expect(again.reembed.state).toBe('done');
    const infoA2 = json<EmbeddingStats>(['model', 'info']);
    expect(infoA2.process?.texts).toBe(again.reembed.total - n);
    expect(infoA2.cache?.persistent.hits).toBeGreaterThanOrEqual(n);

    const list = json<{ models: { name: string }[]; current: string }>(['model', 'list']);
    expect(list.models.map((m) => m.name)).toEqual(['use-lite', 'tiny-a', 'tiny-b']);
    expect(list.current).toBe('tiny-a');
    const stats = json<{ embedding?: EmbeddingStats }>(['stats']);
    expect(stats.embedding?.model.name).toBe('tiny-a');
    expect(stats.embedding?.cache?.memory.latencyUs.counts.length).toBe(12);
    expect(sb.cli(['model', 'info']).stdout).toMatch(/re-embedding: done/);
  });
});

afterAll(() => rmSync(models, { recursive: true, force: true }));
