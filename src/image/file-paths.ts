// The files a user names for images and layers: the archive load reads, the file save, diff -o and
// thin make write. Each is checked before any work is done (a save to a missing directory must not
// export every layer first), and every failure is one line in our words naming the user's path —
// never Node's errno text, never the temp file beside it. The errno stays on the error as `cause`.
import { accessSync, statSync, constants, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Overlay2Error } from '../errors.js';

const WORDS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'the name is too long',
  ENOSPC: 'no space left on the file system',
  EDQUOT: 'the disk quota is exceeded',
  EIO: 'input/output error',
  EBUSY: 'the file is busy',
  ETXTBSY: 'the file is busy',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
};

/** What an errno means, in words; the bare code (never the syscall and path) for one not listed. */
export function errnoWords(e: unknown): string {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  if (typeof code === 'string') return WORDS[code] ?? `failed (${code})`;
  return String((e as Error)?.message ?? e).split('\n')[0]!;
}

/** An error Node's fs gave (it names a syscall), as opposed to one of ours passing through. */
function isFsError(e: unknown): boolean {
  return !(e instanceof Overlay2Error) && typeof e === 'object' && e !== null && typeof (e as { syscall?: unknown }).syscall === 'string';
}

export function inputError(path: string, e: unknown, option = 'input'): Overlay2Error {
  const why = (e as { code?: unknown })?.code === 'ENOENT' ? 'no such file' : errnoWords(e);
  return new Overlay2Error('ERR_BAD_OPTION', `overlay2: cannot read ${path}: ${why}`, { path, option, cause: e });
}

export function outputError(path: string, why: string, cause?: unknown): Overlay2Error {
  return new Overlay2Error('ERR_BAD_OPTION', `overlay2: cannot write ${path}: ${why}`, { path, option: 'output', ...(cause !== undefined ? { cause } : {}) });
}

/** stat() of a path to read; a failure is one line naming it. */
export function statInput(path: string, option = 'input'): Stats {
  try {
    return statSync(path);
  } catch (e) {
    throw inputError(path, e, option);
  }
}

/**
 * Throws unless `path` can be written as a file: its directory exists, is a directory and takes new
 * files, and `path` is not a directory itself. An existing file is replaced (as `docker save -o`).
 */
export function checkOutputFile(path: string): void {
  const dir = dirname(resolve(path));
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (e) {
    throw outputError(path, (e as { code?: unknown }).code === 'ENOENT' ? `no such directory ${dir}` : errnoWords(e), e);
  }
  if (!st.isDirectory()) throw outputError(path, `${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw outputError(path, `cannot create files in ${dir}: ${errnoWords(e)}`, e);
  }
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) throw outputError(path, 'it is a directory (name a file to write)');
}

/** Runs a step that writes `path` (or a temp file beside it): an fs failure becomes one line naming `path`. */
export function writingSync<T>(path: string, step: () => T): T {
  try {
    return step();
  } catch (e) {
    throw isFsError(e) ? outputError(path, errnoWords(e), e) : e;
  }
}

export async function writing<T>(path: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    throw isFsError(e) ? outputError(path, errnoWords(e), e) : e;
  }
}
