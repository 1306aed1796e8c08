// Which of many paths under one directory are there, asked in one call: `list` and `ls` look up a
// file in each layer of a home, and at 10,000 layers a synchronous fs call from JS each cost ten times
// its syscall (access() itself is about a microsecond).
import { closeSync, constants, openSync } from 'node:fs';
import { loadShim } from '../native/shim.js';

/** For each path (relative to `dir`; a symlink counts as there, not followed), whether it is there. */
export function presentUnder(dir: string, relPaths: readonly string[]): boolean[] {
  if (relPaths.length === 0) return [];
  // the shim is there: every driver's init loads it
  const shim = loadShim();
  const modes = new Int32Array(relPaths.length);
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    shim.fstatatModes(fd, Buffer.from(relPaths.join('\0') + '\0'), relPaths.length, new Uint8Array(modes.buffer));
  } finally {
    closeSync(fd);
  }
  return Array.from(modes, (m) => m >= 0);
}
