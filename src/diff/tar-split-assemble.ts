// Rebuilds a layer's original tar from its tar-split file (tar-split-record.ts) and the file
// contents in diff/, hashing as it goes: a layer whose files changed since the apply (other size,
// other bytes, gone) fails with ERR_LAYER_CHANGED before a wrong byte could be taken for the
// original (the last chunk is held back until the digest is known).
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Overlay2Error } from '../errors.js';
import { loadShim } from '../native/shim.js';
import { AT_FDCWD, O_CLOEXEC, O_NOFOLLOW, O_RDONLY } from '../native/constants.js';
import { RESOLVE } from './archive-safety.js';
import { DIR_PATH_FLAGS } from './dir-fd-cache.js';
import { TAR_SPLIT_FILE, TAR_SPLIT_MAGIC } from './tar-split-record.js';

const READ = 1 << 20;

export function hasTarSplit(layerDir: string): boolean {
  return fs.existsSync(join(layerDir, TAR_SPLIT_FILE));
}

/** The layer's original tar; throws ERR_LAYER_CHANGED (from the iteration) when what it would
 *  produce is not `diffId`/`tarSize` any more. */
export async function* assembleLayer(layerDir: string, id: string, diffId: string, tarSize: number): AsyncGenerator<Buffer> {
  const shim = loadShim();
  const records = gunzipSync(fs.readFileSync(join(layerDir, TAR_SPLIT_FILE)));
  if (!records.subarray(0, TAR_SPLIT_MAGIC.length).equals(TAR_SPLIT_MAGIC)) throw changed(id, 'its tar-split file is not ours');
  const hash = createHash('sha256');
  let total = 0;
  let held: Buffer | null = null;
  const rootFd = shim.openat2(AT_FDCWD, join(layerDir, 'diff'), DIR_PATH_FLAGS, 0, 0);
  try {
    let at = TAR_SPLIT_MAGIC.length;
    while (at < records.length) {
      const kind = records[at];
      const n = records.readUInt32LE(at + 1);
      at += 5;
      const out: Buffer[] = [];
      if (kind === 0x52) {
        out.push(records.subarray(at, at + n));
        at += n;
      } else if (kind === 0x46) {
        const path = records.toString('utf8', at, at + n);
        const size = records.readUInt32LE(at + n) * 0x100000000 + records.readUInt32LE(at + n + 4);
        at += n + 8;
        yield* withHeld(fileContent(shim, rootFd, path, size, id));
        continue;
      } else {
        throw changed(id, 'its tar-split file is corrupt');
      }
      yield* withHeld(out);
    }
  } finally {
    fs.closeSync(rootFd);
  }
  if (total !== tarSize) throw changed(id, `rebuilt ${total} bytes, the layer had ${tarSize}`);
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== diffId) throw changed(id, `rebuilt ${got}, the layer had ${diffId}`);
  if (held) yield held;

  // Hashes each chunk and passes the one before it on: the last is released only once verified.
  function* withHeld(chunks: Iterable<Buffer>): Generator<Buffer> {
    for (const c of chunks) {
      hash.update(c);
      total += c.length;
      if (held) yield held;
      held = c;
    }
  }
}

function* fileContent(shim: ReturnType<typeof loadShim>, rootFd: number, path: string, size: number, id: string): Generator<Buffer> {
  let fd: number;
  try {
    fd = shim.openat2(rootFd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, RESOLVE);
  } catch (e) {
    throw changed(id, `${JSON.stringify(path)} cannot be read (${(e as Error).message})`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size !== size) throw changed(id, `${JSON.stringify(path)} is ${st.size} bytes, was ${size}`);
    let left = size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(READ, left));
      const got = fs.readSync(fd, buf, 0, buf.length, null);
      if (got === 0) throw changed(id, `${JSON.stringify(path)} shrank while being read`);
      left -= got;
      yield got === buf.length ? buf : buf.subarray(0, got);
    }
  } finally {
    fs.closeSync(fd);
  }
}

function changed(id: string, why: string): Overlay2Error {
  return new Overlay2Error('ERR_LAYER_CHANGED', `overlay2: layer ${id} changed since it was applied: ${why}; refusing to export bytes that are not its original tar`, { id });
}
