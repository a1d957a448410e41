import { OpError } from '../../../common/contract/errors.js';
import type { Embedder } from '../../embed/embedder.js';
import { openOnnxBert, readOnnxBertFolder } from '../../embed/onnx-bert.js';
import { openUseLite, USE_LITE_NAME } from '../../embed/use-lite.js';

/**
 * The embedder the core's audit search uses (OP_DBUS_SEARCH_EMBEDDER): `use-lite` (default, the bundled
 * pretrained USE-lite), an absolute path to a BERT-class ONNX model folder (model.onnx + tokenizer.json or
 * vocab.txt), or `off` (lexical search only). Both run in the core's process for now.
 */
export async function openSearchEmbedder(env: NodeJS.ProcessEnv): Promise<Embedder | undefined> {
  const choice = env['OP_DBUS_SEARCH_EMBEDDER'] ?? USE_LITE_NAME;
  if (choice === 'off') return undefined;
  if (choice === USE_LITE_NAME) return openUseLite();
  if (choice.startsWith('/')) return openOnnxBert(readOnnxBertFolder(choice));
  throw new OpError(
    'InvalidArgument',
    `OP_DBUS_SEARCH_EMBEDDER must be ${USE_LITE_NAME}, off or an absolute path to an ONNX model folder, not ${JSON.stringify(choice)}`,
  );
}
