// A small file that must be on disk before the step it guards goes on (crash markers, plans that init
// finishes after a kill -9): written and fsynced, mode 0600.
import * as fs from 'node:fs';

export function writeDurably(path: string, text: string): void {
  const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o600);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** writeDurably() on the libuv pool, for a service's event loop: an fsync waits for the disk. */
export async function writeDurablyAsync(path: string, text: string): Promise<void> {
  const fh = await fs.promises.open(path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
