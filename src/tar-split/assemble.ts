// Rebuilds a layer's original tar from its tar-split file (record.ts) and the file
// contents in diff/, hashing as it goes: a layer whose files changed since the apply (other size,
// other bytes, gone) fails with ERR_LAYER_CHANGED before a wrong byte could be taken for the
// original (the last chunk is held back until the digest is known).
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { Overlay2Error } from '../errors.js';
import { loadShim } from '../native/shim.js';
import { AT_FDCWD, O_CLOEXEC, O_NOFOLLOW, O_RDONLY } from '../native/constants.js';
import { RESOLVE } from '../tar/archive-safety.js';
import { DIR_PATH_FLAGS } from '../apply/dir-fd-cache.js';
import { TAR_SPLIT_FILE, TAR_SPLIT_MAGIC } from './record.js';
import { byteString, displayName, osName } from '../util/byte-names.js';

const READ = 1 << 20;

export function hasTarSplit(layerDir: string): boolean {
  return fs.existsSync(join(layerDir, TAR_SPLIT_FILE));
}

/** The layer's original tar; throws ERR_LAYER_CHANGED (from the iteration) when what it would
 *  produce is not `diffId`/`tarSize` any more. */
export async function* assembleLayer(layerDir: string, id: string, diffId: string, tarSize: number): AsyncGenerator<Buffer> {
  const shim = loadShim();
  const hash = createHash('sha256');
  let total = 0;
  let held: Buffer | null = null;
  // Hashes each chunk and passes the one before it on: the last is released only once verified.
  function* withHeld(chunks: Iterable<Buffer>): Generator<Buffer> {
    for (const c of chunks) {
      hash.update(c);
      total += c.length;
      if (held) yield held;
      held = c;
    }
  }
  const rootFd = shim.openat2(AT_FDCWD, join(layerDir, 'diff'), DIR_PATH_FLAGS, 0, 0);
  try {
    for await (const r of records(join(layerDir, TAR_SPLIT_FILE), id)) {
      if (typeof r === 'string') continue;
      if (Buffer.isBuffer(r)) yield* withHeld([r]);
      else yield* withHeld(fileContent(shim, rootFd, r.path, r.size, id));
    }
  } finally {
    fs.closeSync(rootFd);
  }
  if (total !== tarSize) throw changed(id, `rebuilt ${total} bytes, the layer had ${tarSize}`);
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== diffId) throw changed(id, `rebuilt ${got}, the layer had ${diffId}`);
  if (held) yield held;
}

/** The tar-split file's records, streamed (a layer of many files has a large one): raw bytes as
 *  Buffers (a long run may come in pieces), files as { path, size }. */
async function* records(file: string, id: string): AsyncGenerator<Buffer | { path: string; size: number } | string> {
  let buf: Buffer = Buffer.alloc(0);
  let rawLeft = 0;
  let magic = false;
  for await (const chunk of fs.createReadStream(file).pipe(createGunzip())) {
    buf = buf.length === 0 ? (chunk as Buffer) : Buffer.concat([buf, chunk as Buffer]);
    let at = 0;
    if (!magic) {
      if (buf.length < TAR_SPLIT_MAGIC.length) continue;
      if (!buf.subarray(0, TAR_SPLIT_MAGIC.length).equals(TAR_SPLIT_MAGIC)) throw changed(id, 'its tar-split file is not ours');
      magic = true;
      at = TAR_SPLIT_MAGIC.length;
    }
    for (;;) {
      if (rawLeft > 0) {
        const n = Math.min(rawLeft, buf.length - at);
        if (n === 0) break;
        yield buf.subarray(at, at + n);
        at += n;
        rawLeft -= n;
        continue;
      }
      if (buf.length - at < 5) break;
      const kind = buf[at];
      const n = buf.readUInt32LE(at + 1);
      if (kind === 0x52) {
        rawLeft = n;
        at += 5;
      } else if (kind === 0x46) {
        if (buf.length - at < 13 + n) break;
        const path = byteString(buf, at + 5, at + 5 + n);
        const size = buf.readUInt32LE(at + 5 + n) * 0x100000000 + buf.readUInt32LE(at + 9 + n);
        at += 13 + n;
        yield { path, size };
      } else {
        throw changed(id, 'its tar-split file is corrupt');
      }
    }
    buf = buf.subarray(at);
  }
  if (!magic || rawLeft > 0 || buf.length > 0) throw changed(id, 'its tar-split file is truncated');
}

function* fileContent(shim: ReturnType<typeof loadShim>, rootFd: number, path: string, size: number, id: string): Generator<Buffer> {
  let fd: number;
  try {
    fd = shim.openat2(rootFd, osName(path), O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, RESOLVE);
  } catch (e) {
    throw changed(id, `${JSON.stringify(displayName(path))} cannot be read (${(e as Error).message})`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size !== size) throw changed(id, `${JSON.stringify(displayName(path))} is ${st.size} bytes, was ${size}`);
    let left = size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(READ, left));
      const got = fs.readSync(fd, buf, 0, buf.length, null);
      if (got === 0) throw changed(id, `${JSON.stringify(displayName(path))} shrank while being read`);
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
