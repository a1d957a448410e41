import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

/**
 * SHA-256 over a model's files in the order given: each file's name and length are hashed before
 * its bytes, so moving bytes from one file to the next changes the id.
 */
export async function modelIdOf(files: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const file of files) {
    const bytes = await readFile(file);
    hash.update(`${basename(file)}\0${bytes.length}\0`);
    hash.update(bytes);
  }
  return hash.digest('hex');
}
