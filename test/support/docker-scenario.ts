// The Docker end-to-end scenario shared by the tests that run a real dockerd on this driver (the
// plugin beside dockerd, the managed plugin): the base image's root filesystem, the changes a
// container makes to it, and the comparisons with Docker's built-in overlay2 — tar entries by name
// without mtimes, a `docker save` archive's layers, `docker diff` lines as sets.
import { writeFileSync, createReadStream } from 'node:fs';
import { join } from 'node:path';
import { loadShim } from '../../src/native/shim.js';
import { writeBaseRootTar } from './test-image.js';
import { tarEntries, type Entry } from './tar-entries.js';

export { APPLETS, LONG, CHANGES } from './test-image.js';
export { tarEntries, savedLayers, type Entry } from './tar-entries.js';

/** The base image as a layer tar in `dir`: a busybox root with files of every kind the changes touch
 *  (a hardlink, a symlink, a fifo, a user xattr); and a file carrying security.capability to `docker
 *  cp` in (the one xattr Docker's exports keep). */
export function writeBaseImage(dir: string): { baseTar: string; capFile: string } {
  const baseTar = writeBaseRootTar(dir);
  const capFile = join(dir, 'capfile');
  writeFileSync(capFile, 'capable\n', { mode: 0o755 });
  const cap = Buffer.alloc(20);
  cap.writeUInt32LE(0x02000001, 0); // VFS_CAP_REVISION_2
  cap.writeUInt32LE(1 << 13, 4);    // cap_net_raw
  loadShim().lsetxattr(capFile, 'security.capability', cap, 0);
  return { baseTar, capFile };
}

/** What a container of the committed image prints: contents, then each /d entry's type, mode, owner, size, links. */
export const SHOW_COMMITTED = 'cat /d/sub/g /d/n2 /d/a-hard /etc/motd; cd /d && stat -c "%n %F %a %u:%g %s %h" * | sort; ls /d/sub';

/** dockerd prints `docker diff` in Go map order (built-in overlay2: random from run to run): compare as sets. */
export function sortedLines(text: string): string[] {
  return text.split('\n').filter(Boolean).sort();
}

/** The entries of a file's tar. */
export function fileEntries(file: string): Promise<Entry[]> {
  return tarEntries(createReadStream(file));
}
