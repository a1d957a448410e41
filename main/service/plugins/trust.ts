import { lstatSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Why the core must not load code from path, or undefined when it may: the path and every directory
 * above it belong to root and nobody else can write them (a sticky directory such as /tmp is fine
 * above it: others cannot rename what root owns in it), and it is no symlink. The core runs what it
 * loads as root, so a file another user could change is another user's code running as root.
 */
export function untrustedBecause(path: string, kind: 'directory' | 'file'): string | undefined {
  const abs = resolve(path);
  let st: Stats;
  try {
    st = lstatSync(abs);
  } catch (e) {
    return `${abs} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`;
  }
  if (st.isSymbolicLink()) return `${abs} is a symbolic link`;
  if (kind === 'directory' && !st.isDirectory()) return `${abs} is not a directory`;
  if (kind === 'file' && !st.isFile()) return `${abs} is not a regular file`;
  const own = ownershipProblem(abs, st, false);
  if (own !== undefined) return own;
  for (let d = dirname(abs); ; d = dirname(d)) {
    const problem = ownershipProblem(d, lstatSync(d), true);
    if (problem !== undefined) return problem;
    if (d === dirname(d)) return undefined;
  }
}

function ownershipProblem(path: string, st: Stats, ancestor: boolean): string | undefined {
  if (st.uid !== 0) return `${path} is owned by uid ${st.uid}, not root`;
  const sticky = (st.mode & 0o1000) !== 0;
  if ((st.mode & 0o022) !== 0 && !(ancestor && sticky)) {
    return `${path} is writable by ${(st.mode & 0o002) !== 0 ? 'every user' : 'its group'} (mode ${(st.mode & 0o7777).toString(8)})`;
  }
  return undefined;
}
