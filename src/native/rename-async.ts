// renameat2 with flags (RENAME_NOREPLACE, RENAME_EXCHANGE) off the event loop: the rename that puts
// a layer in place, or swaps an import's staging dir in, waits for the filesystem's journal while
// another layer's sync commits it (tens of milliseconds on a busy disk), and on the event loop every
// other call of a service waited with it (issue #24 part 3). Node's fs.rename has no flags.
import type { Shim } from './shim.js';
import { AT_FDCWD } from './constants.js';

/** renameat2(AT_FDCWD, from, AT_FDCWD, to, flags) on the libuv pool; rejects with its Node-style error. */
export function renameOnPool(shim: Shim, from: string, to: string, flags: number): Promise<void> {
  return new Promise((resolve, reject) => shim.renameat2Async(AT_FDCWD, from, AT_FDCWD, to, flags, (e) => (e ? reject(e) : resolve())));
}
