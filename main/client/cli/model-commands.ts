import { resolve } from 'node:path';
import { Command } from 'commander';
import type { EmbeddingModel, EmbeddingStats, ReembedProgress } from '../../common/contract/index.js';
import { print, withClient, writeText, type JsonFlag } from './io.js';

function modelLine(m: EmbeddingModel, current: boolean): string {
  return `${current ? '*' : ' '} ${m.name.padEnd(16)} ${String(m.dims).padStart(4)}-d  ${m.runtime.padEnd(13)} ${m.id.slice(0, 12)}  ${m.label}`;
}

function progressText(p: ReembedProgress): string {
  if (p.state === 'idle') return 're-embedding: none since the core started';
  const pct = p.total === 0 ? 100 : Math.floor((100 * p.done) / p.total);
  return `re-embedding: ${p.state}, ${p.done}/${p.total} texts (${pct}%)${p.message === undefined ? '' : `: ${p.message}`}`;
}

/** The audit search index's side: entries with a vector of the model in use, and those still queued. */
function searchText(s: EmbeddingStats['search']): string | undefined {
  if (s === undefined) return undefined;
  if (s.model === null) return 'audit index: no model yet (lexical search only)';
  const pct = s.entries === 0 ? 100 : Math.floor((100 * s.vectors) / s.entries);
  return `audit index: ${s.vectors}/${s.entries} entries embedded (${pct}%), ${s.queued} queued`;
}

/** Whether the work a model change started is finished: the re-embedding and the audit index's queue. */
function settled(s: EmbeddingStats, model: string): boolean {
  if (s.model.id !== model) return true; // another model was chosen meanwhile: this one's work is over
  if (s.reembed.state === 'running') return false;
  if (s.reembed.state === 'failed') return true; // nothing more will come of it
  return s.search === undefined || s.search.model !== model || s.search.queued === 0;
}

function progressLine(s: EmbeddingStats): string {
  return [progressText(s.reembed), searchText(s.search)].filter((x) => x !== undefined).join('; ');
}

function tierText(name: string, t: NonNullable<EmbeddingStats['cache']>['memory']): string {
  const total = t.hits + t.misses;
  const rate = total === 0 ? '-' : `${((100 * t.hits) / total).toFixed(1)}%`;
  return `  ${name.padEnd(10)} ${t.entries} entries, ${t.bytes} bytes; hits ${t.hits}, misses ${t.misses} (hit rate ${rate}), evictions ${t.evictions}`;
}

function infoText(s: EmbeddingStats): string {
  const lines = [
    `model:     ${s.model.name} (${s.model.label})`,
    `id:        ${s.model.id}`,
    `runtime:   ${s.model.runtime}, ${s.model.dims} dims`,
    progressText(s.reembed),
  ];
  const search = searchText(s.search);
  if (search !== undefined) lines.push(search);
  if (s.process !== undefined)
    lines.push(
      `embedder:  pid ${s.process.pid ?? '-'} uid ${s.process.uid ?? '-'}; ${s.process.texts} texts in ${s.process.batches} batches, ${s.process.queuedTexts} queued; ${s.process.restarts} restarts, ${s.process.retried} retried, ${s.process.failedBatches} failed`,
    );
  else lines.push('embedder:  not started (it starts on first need)');
  if (s.cache !== undefined) {
    lines.push('cache:', tierText('memory', s.cache.memory), tierText('persistent', s.cache.persistent));
    if (s.cache.lastRebuild !== null) lines.push(`  last rebuild: ${s.cache.lastRebuild}`);
  }
  return lines.join('\n');
}

/** `op-dbus model list | use | info`: the text embedding model the core uses. */
export function modelCommand(): Command {
  const model = new Command('model').description('the text embedding model the core uses (for search)');
  model
    .command('list')
    .description('the models the core can use (* marks the one in use)')
    .option('--json', 'machine-readable output')
    .action(async (o: JsonFlag) => {
      const r = await withClient((c) => c.call('Models', {}));
      print(o.json, r, r.models.map((m) => modelLine(m, m.name === r.current)).join('\n'));
    });
  model
    .command('info')
    .description('the model in use, its embedder process, the cache and the re-embedding progress')
    .option('--json', 'machine-readable output')
    .option(
      '--watch',
      'print the re-embedding progress (and the audit index) every second until it is done, then the info',
    )
    .action(async (o: JsonFlag & { watch?: boolean }) => {
      const r = await withClient(async (c) => {
        let info = await c.call('ModelInfo', {});
        const model = info.model.id;
        while (o.watch === true && !settled(info, model)) {
          if (o.json === true) writeText(process.stdout, `${JSON.stringify(info)}\n`);
          else writeText(process.stderr, `${progressLine(info)}\n`);
          await new Promise((res) => setTimeout(res, 1000));
          info = await c.call('ModelInfo', {});
        }
        return info;
      });
      print(o.json, r, infoText(r));
    });
  model
    .command('use')
    .description(
      'switch to a model: a name from `model list`, or a folder with model.onnx and tokenizer.json or vocab.txt',
    )
    .argument('<name-or-dir>', 'model name or folder path')
    .option('--json', 'machine-readable output')
    .option('--wait', 'wait for the re-embedding, printing progress to stderr')
    .action(async (nameOrDir: string, o: JsonFlag & { wait?: boolean }) => {
      // a path is resolved here: the core's working directory is not the user's
      const arg = nameOrDir.includes('/') || nameOrDir.startsWith('.') ? resolve(nameOrDir) : nameOrDir;
      const r = await withClient(async (c) => {
        const used = await c.call('ModelUse', { model: arg });
        let progress = used.reembed;
        // --wait: until the re-embedding is done and the audit index has a vector of the model for every entry
        let info: EmbeddingStats | undefined;
        while (o.wait === true && (info === undefined || !settled(info, used.model.id))) {
          await new Promise((res) => setTimeout(res, 250));
          info = await c.call('ModelInfo', {});
          progress =
            info.model.id === used.model.id
              ? info.reembed
              : { ...progress, state: 'failed', message: 'another model was chosen meanwhile' };
          if (o.json !== true)
            writeText(
              process.stderr,
              `\r${info.model.id === used.model.id ? progressLine(info) : progressText(progress)}`,
            );
        }
        if (o.wait === true && o.json !== true) writeText(process.stderr, '\n');
        return { model: used.model, reembed: progress };
      });
      print(o.json, r, `${modelLine(r.model, true)}\n${progressText(r.reembed)}`);
    });
  return model;
}
