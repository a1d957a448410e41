/**
 * The embedder process (DESIGN.md section 1): started by the core with an unprivileged uid, it
 * parses the model files (untrusted input) and embeds batches it is sent over the IPC channel.
 */
import type { Embedder } from './embedder.js';
import { openOnnxBert } from './onnx-bert.js';
import type { ChildReply, ChildRequest } from './embedder-protocol.js';
import { openUseLite } from './use-lite.js';

let embedder: Embedder | undefined;

function reply(message: ChildReply): void {
  process.send?.(message);
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

process.on('message', (raw: ChildRequest) => {
  void (async () => {
    if (raw.type === 'load') {
      try {
        embedder = raw.spec.kind === 'use-lite' ? await openUseLite() : await openOnnxBert(raw.spec.bytes);
        reply({ type: 'ready', model: embedder.model, uid: process.getuid?.() ?? -1 });
      } catch (e) {
        reply({ type: 'load-failed', message: messageOf(e) });
      }
    } else if (raw.type === 'embed') {
      try {
        if (embedder === undefined) throw new Error('no model loaded');
        const vectors = await embedder.embed(raw.texts);
        reply({ type: 'vectors', id: raw.id, vectors });
      } catch (e) {
        reply({ type: 'embed-failed', id: raw.id, message: messageOf(e) });
      }
    } else if (raw.type === 'close') {
      await embedder?.close();
      process.disconnect?.();
    }
  })();
});

// the core went away: nothing left to embed for
process.on('disconnect', () => process.exit(0));
