// Random access into an image archive that is a tar file: one pass records where each member's
// content starts, then blobs are read straight from the file by offset (so the order of members
// does not matter: docker save writes layers before manifest.json, OCI writes blobs after
// index.json). A compressed archive (docker save | gzip) is first decompressed to a temp file.
import * as fs from 'node:fs';
import { TarReader } from '../tar/reader.js';
import { displayName } from '../util/byte-names.js';
import { decompressed, detectCompression } from '../tar/decompress.js';
import { cleanName } from '../tar/archive-safety.js';
import { badImage } from './digest.js';

export interface Member {
  kind: string;
  /** Where the content starts in the file (-1 when it has none). */
  offset: number;
  size: number;
  /** symlink and hardlink members: the target as stored. */
  linkname: string;
}

const CHUNK = 1 << 20;

export async function indexArchive(file: string): Promise<Map<string, Member>> {
  const members = new Map<string, Member>();
  let current: Member | null = null;
  let base = 0;
  let chunk: Buffer | null = null;
  const reader = new TarReader({
    entry: (e) => {
      const name = cleanName(e.name);
      current = { kind: e.kind, offset: -1, size: e.size, linkname: e.linkname };
      if (name) members.set(name, current);
    },
    data: (buf, start) => {
      if (current && current.offset < 0) current.offset = buf === chunk ? base + start : -2;
    },
    end: () => { current = null; },
  });
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let n; (n = fs.readSync(fd, buf, 0, CHUNK, null)) > 0; base += n) {
      chunk = buf.subarray(0, n);
      reader.push(chunk);
      if (reader.done) break;
    }
    reader.finish();
  } finally {
    fs.closeSync(fd);
  }
  for (const [name, m] of members) if (m.offset === -2) throw badImage(`cannot locate ${displayName(name)} in the archive`);
  return members;
}

/** True when the file starts compressed (gzip, zstd...). */
export function isCompressedFile(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(10);
    const n = fs.readSync(fd, head, 0, 10, 0);
    return detectCompression(head.subarray(0, n)) !== 'none';
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes the decompressed (or, for a stream, spooled) bytes of `input` to `dest`. */
export async function spool(input: AsyncIterable<Uint8Array>, dest: string, signal?: AbortSignal): Promise<void> {
  const fd = fs.openSync(dest, 'w', 0o600);
  try {
    for await (const c of decompressed(input)) {
      signal?.throwIfAborted();
      for (let off = 0; off < c.length;) off += fs.writeSync(fd, c, off);
    }
  } finally {
    fs.closeSync(fd);
  }
}
