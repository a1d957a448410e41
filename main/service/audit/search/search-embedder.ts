import { OpError } from '../../../common/contract/errors.js';
import type { Embedder } from '../../embed/embedder.js';
import { EmbedderProcess } from '../../embed/embedder-process.js';
import { readOnnxBertFolder } from '../../embed/onnx-bert.js';
import { USE_LITE_NAME } from '../../embed/use-lite.js';

/**
 * Whether the core's audit search embeds at all (OP_DBUS_SEARCH_EMBEDDER=off: lexical search only). Which
 * model it embeds with is the core's model in use (`op-dbus model use`), run by the embedder process.
 */
export function searchEmbeds(env: NodeJS.ProcessEnv): boolean {
  const choice = env['OP_DBUS_SEARCH_EMBEDDER'];
  if (choice === undefined || choice === '' || choice === 'on') return true;
  if (choice === 'off') return false;
  throw new OpError(
    'InvalidArgument',
    `OP_DBUS_SEARCH_EMBEDDER must be on or off, not ${JSON.stringify(choice)}: the model is chosen with op-dbus model use`,
  );
}

/**
 * The embedder `audit search-eval` measures (OP_DBUS_SEARCH_EMBEDDER in the CLI's environment): `use-lite`
 * (default), an absolute path to a BERT-class ONNX model folder (model.onnx + tokenizer.json or vocab.txt),
 * or `off` (BM25 only). Either runs in an embedder process of its own, like the core's: the model files
 * are parsed there, never in this process.
 */
export async function openSearchEmbedder(env: NodeJS.ProcessEnv): Promise<Embedder | undefined> {
  const choice = env['OP_DBUS_SEARCH_EMBEDDER'] ?? USE_LITE_NAME;
  if (choice === 'off') return undefined;
  if (choice === USE_LITE_NAME) return EmbedderProcess.start({ kind: 'use-lite' });
  if (choice.startsWith('/'))
    return EmbedderProcess.start({ kind: 'onnx-bert', bytes: readOnnxBertFolder(choice) });
  throw new OpError(
    'InvalidArgument',
    `OP_DBUS_SEARCH_EMBEDDER must be ${USE_LITE_NAME}, off or an absolute path to an ONNX model folder, not ${JSON.stringify(choice)}`,
  );
}
