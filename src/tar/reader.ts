// A push parser for tar archives (ustar, PAX, GNU long names), synchronous and copy-free: bytes
// go in with push(), headers and content come out through a TarSink, in order, on the same stack.
// Written by hand rather than taken from tar-stream because an importer needs three things that
// tar-stream does not give: binary PAX values (xattrs), strict validation with a code per failure,
// and no per-entry stream objects or awaits (tar-stream ran ~8x slower on 50k small files; see
// bench/RESULTS.md, applyDiff section).
import { Overlay2Error } from '../errors.js';
import { displayName } from '../util/byte-names.js';
import { parsePax, PaxError, type PaxRecords } from './pax.js';

export type EntryKind = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

/** One archive member. The reader reuses a single object: a sink that keeps fields must copy them. */
export interface TarEntry {
  /** The name as stored (PAX path > GNU long name > ustar prefix/name), not cleaned: a byte string
   *  (src/util/byte-names.ts), so a name that is not UTF-8 arrives unchanged. */
  name: string;
  kind: EntryKind;
  /** Permission and setuid/setgid/sticky bits (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Content bytes ('file' only; 0 for every other kind). */
  size: number;
  mtimeSec: number;
  mtimeNsec: number;
  /** From a PAX atime record; -1 in atimeNsec when the archive carries none. */
  atimeSec: number;
  atimeNsec: number;
  /** The link target, a byte string like name. */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** SCHILY.xattr.* records with their exact bytes, or null. */
  xattrs: Array<[string, Buffer]> | null;
}

/** The first block is not a tar header (or the input ends before one): GNU tar's "This does not look
 *  like a tar archive". The reader sees decompressed bytes, so it names every form it would have read. */
function notATar(): Overlay2Error {
  return new Overlay2Error('ERR_BAD_ARCHIVE',
    'overlay2: bad archive: the input is not a tar archive, plain or compressed (gzip, zstd, xz, bzip2)');
}

/** Receives the archive in order. entry() is followed by data() calls covering exactly `size`
 *  bytes (none when size is 0) and then one end(). Throwing aborts the parse. */
export interface TarSink {
  entry(e: TarEntry): void;
  data(buf: Buffer, start: number, end: number): void;
  end(): void;
}

/** The largest PAX or GNU long-name payload accepted (Go's archive/tar uses the same 1 MiB). */
export const MAX_META_SIZE = 1 << 20;

const BLOCK = 512;
const enum State { Header, Data, Meta, Pad, AfterZero, Done }

export class TarReader {
  private state = State.Header;
  private readonly block = Buffer.alloc(BLOCK);
  private blockFill = 0;
  private remaining = 0;
  private pad = 0;
  private meta: Buffer | null = null;
  private metaFill = 0;
  private metaType = 0;
  private longName: string | undefined;
  private longLink: string | undefined;
  private pax: PaxRecords | undefined;
  private index = 0;
  private current = '';
  private previous = '';
  private readonly e: TarEntry = {
    name: '', kind: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtimeSec: 0, mtimeNsec: 0,
    atimeSec: 0, atimeNsec: -1, linkname: '', devmajor: 0, devminor: 0, xattrs: null,
  };

  constructor(private readonly sink: TarSink) {}

  /** True once the end-of-archive blocks were read; later bytes (record padding) are ignored. */
  get done(): boolean {
    return this.state === State.Done;
  }

  push(chunk: Buffer): void {
    const len = chunk.length;
    let pos = 0;
    while (pos < len) {
      switch (this.state) {
        case State.Header:
        case State.AfterZero: {
          if (this.blockFill === 0 && len - pos >= BLOCK) {
            this.header(chunk, pos);
            pos += BLOCK;
          } else {
            const n = Math.min(BLOCK - this.blockFill, len - pos);
            chunk.copy(this.block, this.blockFill, pos, pos + n);
            this.blockFill += n;
            pos += n;
            if (this.blockFill === BLOCK) {
              this.blockFill = 0;
              this.header(this.block, 0);
            }
          }
          break;
        }
        case State.Data: {
          const n = Math.min(this.remaining, len - pos);
          this.remaining -= n;
          this.sink.data(chunk, pos, pos + n);
          pos += n;
          if (this.remaining === 0) this.endData();
          break;
        }
        case State.Meta: {
          const meta = this.meta!;
          const n = Math.min(meta.length - this.metaFill, len - pos);
          chunk.copy(meta, this.metaFill, pos, pos + n);
          this.metaFill += n;
          pos += n;
          if (this.metaFill === meta.length) this.endMeta();
          break;
        }
        case State.Pad: {
          const n = Math.min(this.pad, len - pos);
          this.pad -= n;
          pos += n;
          if (this.pad === 0) this.state = State.Header;
          break;
        }
        case State.Done:
          return;
      }
    }
  }

  /** Call at the end of the input: throws ERR_BAD_ARCHIVE when it stopped inside a member. Like Go's
   *  archive/tar, input that ends cleanly between members (no end-of-archive blocks) is accepted. */
  finish(): void {
    const clean = (this.state === State.Header || this.state === State.AfterZero) && this.blockFill === 0;
    if (this.state === State.Done || (clean && this.meta === null && this.longName === undefined &&
        this.longLink === undefined && this.pax === undefined)) {
      this.state = State.Done;
      return;
    }
    if (this.state === State.Header && this.index === 0) throw notATar();
    if (this.state === State.Header || this.state === State.AfterZero) {
      const what = this.blockFill > 0 ? 'inside a header' : 'after a PAX or GNU long-name header';
      const current = displayName(this.current);
      const after = current ? ` after entry ${JSON.stringify(current)}` : '';
      throw new Overlay2Error('ERR_BAD_ARCHIVE', `overlay2: bad archive: archive is truncated ${what}${after}`, { path: current || undefined });
    }
    throw this.bad('archive is truncated');
  }

  private bad(what: string, cause?: unknown): Overlay2Error {
    const current = displayName(this.current);
    const who = current ? `entry ${JSON.stringify(current)}` : `entry #${this.index}`;
    return new Overlay2Error('ERR_BAD_ARCHIVE', `overlay2: bad archive: ${what} (${who})`,
      { path: current || undefined, cause });
  }

  private header(buf: Buffer, off: number): void {
    // Checksum: the field itself counts as eight spaces. Some old writers summed signed bytes.
    let unsigned = 0, signed = 0;
    for (let i = off; i < off + BLOCK; i++) {
      const b = buf[i];
      unsigned += b;
      signed += b > 127 ? b - 256 : b;
    }
    if (unsigned === 0) {
      if (this.state === State.AfterZero) {
        this.state = State.Done;
      } else {
        this.state = State.AfterZero;
      }
      return;
    }
    this.index++;
    if (this.current) this.previous = this.current;
    this.current = '';
    if (this.state === State.AfterZero) throw this.bad('data after an end-of-archive block');
    let fieldSum = 0, fieldSigned = 0;
    for (let i = off + 148; i < off + 156; i++) {
      const b = buf[i];
      fieldSum += b;
      fieldSigned += b > 127 ? b - 256 : b;
    }
    unsigned += 8 * 32 - fieldSum;
    signed += 8 * 32 - fieldSigned;
    let stored = -1;
    try {
      stored = this.octal(buf, off + 148, 8, 'checksum');
    } catch {
      // reported below
    }
    if (stored !== unsigned && stored !== signed) {
      if (this.index === 1) throw notATar();
      // Before trusting any field, give the error a name to quote when the block looks like a header.
      const name = lenientName(buf, off);
      const where = name ? `entry ${JSON.stringify(name)}` : this.previous ? `the header after entry ${JSON.stringify(displayName(this.previous))}` : `header #${this.index}`;
      throw new Overlay2Error('ERR_BAD_ARCHIVE', `overlay2: bad archive: header checksum mismatch in ${where} (not a tar archive, or corrupt)`, { path: name || undefined });
    }

    const typeflag = buf[off + 156];
    const ustar = buf[off + 257] === 0x75 && buf[off + 258] === 0x73 && buf[off + 259] === 0x74 &&
      buf[off + 260] === 0x61 && buf[off + 261] === 0x72;
    const posix = ustar && buf[off + 262] === 0;
    let name = text(buf, off, 100);
    if (posix && buf[off + 345] !== 0) name = text(buf, off + 345, 155) + '/' + name;
    this.current = name;

    // Meta members describe the next one.
    if (typeflag === 0x78 /* x */ || typeflag === 0x67 /* g */ || typeflag === 0x4c /* L */ || typeflag === 0x4b /* K */) {
      const size = this.numeric(buf, off + 124, 12, 'size', false);
      if (size > MAX_META_SIZE) throw this.bad(`${String.fromCharCode(typeflag)} header of ${size} bytes exceeds ${MAX_META_SIZE}`);
      this.metaType = typeflag;
      this.meta = Buffer.allocUnsafe(size);
      this.metaFill = 0;
      if (size === 0) this.endMeta();
      else this.state = State.Meta;
      return;
    }

    const e = this.e;
    let kind: EntryKind;
    switch (typeflag) {
      case 0x30: case 0x37: kind = 'file'; break;            // '0', '7' contiguous
      case 0: kind = name.endsWith('/') ? 'dir' : 'file'; break; // pre-POSIX: a trailing slash is a dir
      case 0x31: kind = 'hardlink'; break;
      case 0x32: kind = 'symlink'; break;
      case 0x33: kind = 'char'; break;
      case 0x34: kind = 'block'; break;
      case 0x35: kind = 'dir'; break;
      case 0x36: kind = 'fifo'; break;
      case 0x53: throw this.bad('GNU sparse files are not supported');
      default:
        throw this.bad(`unsupported entry type ${JSON.stringify(String.fromCharCode(typeflag))}`);
    }
    const pax = this.pax;
    if (pax?.sparse !== undefined) throw this.bad(`sparse files are not supported (PAX ${pax.sparse})`);
    if (this.longName !== undefined) name = this.longName;
    if (pax?.path !== undefined) name = pax.path;
    this.current = name;
    if (name.length === 0) throw this.bad('empty name');
    let linkname = '';
    if (kind === 'hardlink' || kind === 'symlink') {
      linkname = text(buf, off + 157, 100);
      if (this.longLink !== undefined) linkname = this.longLink;
      if (pax?.linkpath !== undefined) linkname = pax.linkpath;
      if (linkname.length === 0) throw this.bad(`${kind} without a target`);
    }

    e.name = name;
    e.kind = kind;
    e.mode = this.numeric(buf, off + 100, 8, 'mode', false) & 0o7777;
    e.uid = pax?.uid ?? this.numeric(buf, off + 108, 8, 'uid', false);
    e.gid = pax?.gid ?? this.numeric(buf, off + 116, 8, 'gid', false);
    if (e.uid > 0xffffffff || e.gid > 0xffffffff) throw this.bad('uid/gid out of range');
    const size = pax?.size ?? this.numeric(buf, off + 124, 12, 'size', false);
    if (pax?.mtime) {
      e.mtimeSec = pax.mtime.sec;
      e.mtimeNsec = pax.mtime.nsec;
    } else {
      e.mtimeSec = this.numeric(buf, off + 136, 12, 'mtime', true);
      e.mtimeNsec = 0;
    }
    if (pax?.atime) {
      e.atimeSec = pax.atime.sec;
      e.atimeNsec = pax.atime.nsec;
    } else {
      e.atimeSec = 0;
      e.atimeNsec = -1;
    }
    e.linkname = linkname;
    if (kind === 'char' || kind === 'block') {
      e.devmajor = this.numeric(buf, off + 329, 8, 'devmajor', false);
      e.devminor = this.numeric(buf, off + 337, 8, 'devminor', false);
    } else {
      e.devmajor = 0;
      e.devminor = 0;
    }
    e.xattrs = pax?.xattrs ?? null;
    this.longName = undefined;
    this.longLink = undefined;
    this.pax = undefined;

    // Like Go's archive/tar, only regular files carry content; other kinds' size fields are ignored.
    e.size = kind === 'file' ? size : 0;
    this.sink.entry(e);
    if (e.size === 0) {
      this.sink.end();
      this.state = State.Header;
    } else {
      this.remaining = e.size;
      this.pad = (BLOCK - (e.size % BLOCK)) % BLOCK;
      this.state = State.Data;
    }
  }

  private endData(): void {
    this.sink.end();
    this.state = this.pad > 0 ? State.Pad : State.Header;
  }

  private endMeta(): void {
    const meta = this.meta!;
    this.meta = null;
    const type = this.metaType;
    if (type === 0x78 || type === 0x67) {
      let records: PaxRecords;
      try {
        records = parsePax(meta);
      } catch (err) {
        if (err instanceof PaxError) throw this.bad(err.message);
        throw err;
      }
      // Global headers are checked and then ignored, as moby does (Go's reader hands them to the
      // caller, which skips them); local ones apply to the next member, later records winning.
      if (type === 0x78) this.pax = this.pax ? mergePax(this.pax, records) : records;
    } else {
      let end = meta.length;
      while (end > 0 && meta[end - 1] === 0) end--;
      const value = meta.subarray(0, end);
      if (value.includes(0)) throw this.bad(`NUL inside a GNU long ${type === 0x4c ? 'name' : 'link'}`);
      // Bytes, as Go keeps them: a name that is not UTF-8 is still the file's name.
      if (type === 0x4c) this.longName = value.toString('latin1');
      else this.longLink = value.toString('latin1');
    }
    const pad = (BLOCK - (meta.length % BLOCK)) % BLOCK;
    this.pad = pad;
    this.state = pad > 0 ? State.Pad : State.Header;
  }

  private octal(buf: Buffer, off: number, len: number, field: string): number {
    let i = off;
    const limit = off + len;
    while (i < limit && (buf[i] === 0x20 || buf[i] === 0)) i++;
    let n = 0;
    let digits = 0;
    for (; i < limit; i++) {
      const c = buf[i];
      if (c === 0x20 || c === 0) break;
      if (c < 0x30 || c > 0x37) throw this.bad(`invalid ${field} field`);
      n = n * 8 + (c - 0x30);
      digits++;
    }
    for (; i < limit; i++) {
      if (buf[i] !== 0x20 && buf[i] !== 0) throw this.bad(`invalid ${field} field`);
    }
    return digits === 0 ? 0 : n;
  }

  /** Octal, or GNU base-256 when the high bit of the first byte is set (bit 6 is the sign). */
  private numeric(buf: Buffer, off: number, len: number, field: string, allowNegative: boolean): number {
    const first = buf[off];
    if ((first & 0x80) === 0) return this.octal(buf, off, len, field);
    const negative = (first & 0x40) !== 0;
    if (negative && !allowNegative) throw this.bad(`negative ${field}`);
    const inv = negative ? 0xff : 0;
    let n = (first ^ inv) & 0x7f;
    for (let i = off + 1; i < off + len; i++) {
      n = n * 256 + (buf[i] ^ inv);
      if (n > Number.MAX_SAFE_INTEGER) throw this.bad(`${field} overflows`);
    }
    return negative ? -n - 1 : n;
  }
}

function mergePax(a: PaxRecords, b: PaxRecords): PaxRecords {
  const out: PaxRecords = { ...a, ...b };
  for (const k of Object.keys(b) as Array<keyof PaxRecords>) if (b[k] === undefined) out[k] = a[k] as never;
  if (a.xattrs && b.xattrs) out.xattrs = [...a.xattrs, ...b.xattrs];
  return out;
}

/** A NUL-terminated field as a byte string (src/util/byte-names.ts): names are bytes in tar. */
function text(buf: Buffer, off: number, len: number): string {
  let end = off;
  const limit = off + len;
  while (end < limit && buf[end] !== 0) end++;
  return buf.toString('latin1', off, end);
}

/** The name field of a block that failed validation, for the error message only. */
function lenientName(buf: Buffer, off: number): string {
  let end = off;
  while (end < off + 100 && buf[end] !== 0) end++;
  const s = buf.toString('latin1', off, end);
  return /^[\x20-\x7e]+$/.test(s) ? s : '';
}
