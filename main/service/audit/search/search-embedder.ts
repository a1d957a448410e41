import { OpError } from '../../../common/contract/errors.js';
import type { Embedder } from '../../embed/embedder.js';
import { openUseLite, USE_LITE_NAME } from '../../embed/use-lite.js';

/**
 * The embedder the core's audit search uses (OP_DBUS_SEARCH_EMBEDDER): `use-lite` (default, the bundled
 * pretrained USE-lite, run in the core's process) or `off` (lexical search only).
 */
export async function openSearchEmbedder(env: NodeJS.ProcessEnv): Promise<Embedder | undefined> {
  const choice = env['OP_DBUS_SEARCH_EMBEDDER'] ?? USE_LITE_NAME;
  if (choice === 'off') return undefined;
  if (choice === USE_LITE_NAME) return openUseLite();
  throw new OpError(
    'InvalidArgument',
    `OP_DBUS_SEARCH_EMBEDDER must be ${USE_LITE_NAME} or off, not ${JSON.stringify(choice)}`,
  );
}
