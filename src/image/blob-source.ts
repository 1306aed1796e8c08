// The files of an image (manifest.json, index.json, blobs...) by name, whether the image is a
// directory or a tar file (indexed: archive-index.ts). Names are relative, '/'-separated, cleaned;
// a directory's files are opened without following symlinks out of it; an archive's symlinks
// (legacy docker save links duplicate layer.tar files) are followed inside the archive.
import * as fs from 'node:fs';
import { join, posix } from 'node:path';
import { cleanName } from '../tar/archive-safety.js';
import { indexArchive, type Member } from './archive-index.js';
import { badImage } from './digest.js';
import { utf8ByteString } from '../util/byte-names.js';

const CHUNK = 1 << 20;
const MAX_JSON = 64 << 20;

export interface BlobSource {
  has(name: string): boolean;
  size(name: string): number;
  /** The file's bytes; `name` must exist. */
  read(name: string): AsyncIterable<Buffer>;
  readJson(name: string): Promise<unknown>;
  /** What to say in messages. */
  readonly where: string;
}

export async function openSource(path: string): Promise<BlobSource> {
  const st = fs.statSync(path);
  if (st.isDirectory()) return new DirSource(path);
  return new ArchiveSource(path, await indexArchive(path));
}

abstract class Base implements BlobSource {
  abstract readonly where: string;
  abstract has(name: string): boolean;
  abstract size(name: string): number;
  abstract read(name: string): AsyncIterable<Buffer>;

  async readJson(name: string): Promise<unknown> {
    if (!this.has(name)) throw badImage(`${this.where} has no ${name}`);
    if (this.size(name) > MAX_JSON) throw badImage(`${name} in ${this.where} is too large for JSON`);
    const parts: Buffer[] = [];
    for await (const c of this.read(name)) parts.push(Buffer.from(c));
    try {
      return JSON.parse(Buffer.concat(parts).toString('utf8'));
    } catch (e) {
      throw badImage(`${name} in ${this.where} is not JSON: ${(e as Error).message}`);
    }
  }
}

class DirSource extends Base {
  readonly where: string;
  constructor(private readonly dir: string) {
    super();
    this.where = dir;
  }

  private path(name: string): string | null {
    const clean = cleanName(name);
    return clean ? join(this.dir, clean) : null;
  }

  has(name: string): boolean {
    const p = this.path(name);
    return p !== null && fs.statSync(p, { throwIfNoEntry: false })?.isFile() === true;
  }

  size(name: string): number {
    return fs.statSync(this.path(name)!).size;
  }

  async *read(name: string): AsyncGenerator<Buffer> {
    const fd = fs.openSync(this.path(name)!, 'r');
    try {
      for (;;) {
        const buf = Buffer.allocUnsafe(CHUNK);
        const n = await new Promise<number>((resolve, reject) => fs.read(fd, buf, 0, CHUNK, null, (e, got) => (e ? reject(e) : resolve(got))));
        if (n === 0) return;
        yield buf.subarray(0, n);
      }
    } finally {
      fs.closeSync(fd);
    }
  }
}

class ArchiveSource extends Base {
  readonly where: string;
  constructor(private readonly file: string, private readonly members: Map<string, Member>) {
    super();
    this.where = file;
  }

  /** `name` comes from the image's JSON (text); the index holds the archive's names as bytes. */
  private member(name: string): Member | null {
    let clean = cleanName(utf8ByteString(name));
    for (let hops = 0; clean && hops < 16; hops++) {
      const m = this.members.get(clean);
      if (!m) return null;
      if (m.kind === 'file') return m;
      if (m.kind === 'symlink') clean = cleanName(posix.join(posix.dirname(clean), m.linkname));
      else if (m.kind === 'hardlink') clean = cleanName(m.linkname);
      else return null;
    }
    return null;
  }

  has(name: string): boolean {
    return this.member(name) !== null;
  }

  size(name: string): number {
    return this.member(name)!.size;
  }

  async *read(name: string): AsyncGenerator<Buffer> {
    const m = this.member(name)!;
    if (m.size === 0) return;
    const fd = fs.openSync(this.file, 'r');
    try {
      let pos = m.offset;
      let left = m.size;
      while (left > 0) {
        const buf = Buffer.allocUnsafe(Math.min(CHUNK, left));
        const n = await new Promise<number>((resolve, reject) => fs.read(fd, buf, 0, buf.length, pos, (e, got) => (e ? reject(e) : resolve(got))));
        if (n === 0) throw badImage(`${name} is truncated in ${this.file}`);
        pos += n;
        left -= n;
        yield buf.subarray(0, n);
      }
    } finally {
      fs.closeSync(fd);
    }
  }
}
