// Tar headers byte for byte as Go 1.19's archive/tar Writer writes them for Docker 20.10
// (pkg/archive sets Format = FormatPAX, which Go widens to "USTAR or PAX"): a single USTAR block
// whenever every field fits (a long name split into prefix/name), otherwise a PAX extended header
// ('x' entry named DIR/PaxHeaders.0/BASE, records sorted by key) followed by the entry's own block.
//
// Strings (names, link names, user/group names, xattr names) are "byte strings": latin1-decoded
// bytes, one char per byte, so file names that are not UTF-8 survive and JS string order is byte
// order. Xattr values are Buffers: PAX records are bytes and binary values must not be decoded.
import { Overlay2Error } from '../errors.js';

export const BLOCK_SIZE = 512;

export const TYPE_REG = 0x30;      // '0'
export const TYPE_LINK = 0x31;     // '1' hard link
export const TYPE_SYMLINK = 0x32;  // '2'
export const TYPE_CHAR = 0x33;     // '3'
export const TYPE_BLOCK = 0x34;    // '4'
export const TYPE_DIR = 0x35;      // '5'
export const TYPE_FIFO = 0x36;     // '6'
export const TYPE_XHEADER = 0x78;  // 'x' PAX extended header for the next entry

/** The two zero blocks that end an archive. Go's Writer does not pad to a 10 KiB record. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK_SIZE);

export interface TarHeader {
  name: string;       // byte string; directories end with "/"
  linkname: string;   // byte string; '' when none
  typeflag: number;   // TYPE_*
  mode: number;       // permission bits | setuid/setgid/sticky | c_IS* file-type bits
  uid: number;
  gid: number;
  size: number;       // bytes of data following the header (0 for header-only types)
  mtime: number;      // whole seconds since the Unix epoch (may be negative)
  uname: string;      // byte string
  gname: string;      // byte string
  devmajor: number;
  devminor: number;
  /** [xattr name as byte string, raw value], written as PAX SCHILY.xattr.NAME records. */
  xattrs: Array<[string, Buffer]> | null;
}

// Field offsets and sizes of a USTAR block.
const NAME = 0, NAME_SIZE = 100;
const MODE = 100, UID = 108, GID = 116, NUM_SIZE = 8;
const SIZE = 124, MTIME = 136, BIG_NUM_SIZE = 12;
const CHKSUM = 148, TYPEFLAG = 156;
const LINKNAME = 157;
const MAGIC = 257, VERSION = 263;
const UNAME = 265, GNAME = 297, OWNER_SIZE = 32;
const DEVMAJOR = 329, DEVMINOR = 337;
const PREFIX = 345, PREFIX_SIZE = 155;

const MAX_PAX_DATA = 1 << 20; // Go refuses larger extended headers (maxSpecialFileSize)
const NON_ASCII = /[\x00\x80-\uffff]/;
const NON_ASCII_ALL = /[\x00\x80-\uffff]/g;

/** Go's fitsInOctal: x fits a field of n bytes as n-1 octal digits plus a NUL. */
export function fitsInOctal(fieldSize: number, x: number): boolean {
  return x >= 0 && x < 8 ** (fieldSize - 1);
}

/** Go's isASCII over bytes: no byte ≥ 0x80 and no NUL. */
export function isASCII(s: string): boolean {
  return !NON_ASCII.test(s);
}

/** Go's toASCII: drops every non-ASCII byte (whole UTF-8 sequences, stray bytes) and NULs. */
export function toASCII(s: string): string {
  return isASCII(s) ? s : s.replace(NON_ASCII_ALL, '');
}

/** Go's splitUSTARPath: the longest prefix ≤ 155 bytes that leaves a name of 1..100 bytes. */
export function splitUSTARPath(name: string): [prefix: string, suffix: string] | null {
  let length = name.length;
  if (length <= NAME_SIZE || !isASCII(name)) return null;
  if (length > PREFIX_SIZE + 1) length = PREFIX_SIZE + 1;
  else if (name.charCodeAt(length - 1) === 0x2f) length--;
  const i = name.lastIndexOf('/', length - 1);
  const nlen = name.length - i - 1;
  if (i <= 0 || nlen > NAME_SIZE || nlen === 0 || i > PREFIX_SIZE) return null;
  return [name.slice(0, i), name.slice(i + 1)];
}

/** Go's path.Clean (lexical: drops empty and "." elements, resolves ".." where it can). */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.charCodeAt(0) === 0x2f;
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return '/' + joined;
  return joined === '' ? '.' : joined;
}

/** Go's path.Join: the non-empty elements joined by "/" and cleaned; "" when all are empty. */
export function joinPath(...elems: string[]): string {
  const parts = elems.filter((e) => e !== '');
  return parts.length === 0 ? '' : cleanPath(parts.join('/'));
}

/** Name of the PAX extended header of an entry, as Go's writePAXHeader + writeRawFile build it. */
export function paxHeaderName(name: string): string {
  const slash = name.lastIndexOf('/');
  const joined = joinPath(name.slice(0, slash + 1), 'PaxHeaders.0', name.slice(slash + 1));
  let ascii = toASCII(joined);
  if (ascii.length > NAME_SIZE) ascii = ascii.slice(0, NAME_SIZE);
  return trimRightSlashes(ascii);
}

function trimRightSlashes(s: string): string {
  let n = s.length;
  while (n > 0 && s.charCodeAt(n - 1) === 0x2f) n--;
  return n === s.length ? s : s.slice(0, n);
}

/** Go's formatter.formatString on a zeroed field: copy (truncating), and when a truncated string
 *  ends the field with "/", a NUL replaces the first of the trailing slashes. Returns the sum of
 *  the bytes written, for the checksum. */
function putString(b: Uint8Array, off: number, size: number, s: string): number {
  const n = s.length;
  if (n === 0) return 0;
  const m = n < size ? n : size;
  let sum = 0;
  // a byte string has one char per byte: stored as they are summed (a call into C++ per field
  // costs more than the loop for names this short)
  for (let i = 0; i < m; i++) {
    const c = s.charCodeAt(i);
    b[off + i] = c;
    sum += c;
  }
  if (n > size && s.charCodeAt(size - 1) === 0x2f) {
    b[off + trimRightSlashes(s.slice(0, size)).length] = 0;
    sum -= 0x2f;
  }
  return sum;
}

/** Go's formatter.formatOctal: n-1 zero-padded octal digits and a NUL; 0 when x does not fit.
 *  Returns the sum of the bytes written. */
function putOctal(b: Uint8Array, off: number, size: number, x: number): number {
  if (!(x >= 0 && x < OCTAL_LIMIT[size]!)) x = 0; // fitsInOctal
  let sum = 0;
  if (x <= 0x7fffffff) { // integer steps for every value but huge sizes and far-future mtimes
    for (let i = off + size - 2; i >= off; i--) {
      const d = 0x30 + (x & 7);
      b[i] = d;
      sum += d;
      x >>>= 3;
    }
    return sum;
  }
  for (let i = off + size - 2; i >= off; i--) {
    const d = 0x30 + (x % 8);
    b[i] = d;
    sum += d;
    x = Math.floor(x / 8);
  }
  return sum;
}

const MAGIC_SUM = 0x75 + 0x73 + 0x74 + 0x61 + 0x72 + 0x30 + 0x30; // "ustar\0" "00"
const MAGIC_BYTES = [0x75, 0x73, 0x74, 0x61, 0x72, 0, 0x30, 0x30];
/** 8 ** (size - 1) for the field sizes: the first value that does not fit (fitsInOctal). */
const OCTAL_LIMIT: number[] = [];
for (const size of [7, NUM_SIZE, BIG_NUM_SIZE]) OCTAL_LIMIT[size] = 8 ** (size - 1);

/** Magic "ustar\0" and version "00"; returns the sum of their bytes. */
function putMagic(b: Uint8Array, off: number): number {
  for (let i = 0; i < 8; i++) b[off + MAGIC + i] = MAGIC_BYTES[i]!;
  return MAGIC_SUM;
}

/** The checksum (6 octal digits, NUL, space) from `sum`, the sum of every other byte of the block;
 *  the checksum field itself counts as eight spaces. */
function putChecksum(b: Uint8Array, off: number, sum: number): void {
  putOctal(b, off + CHKSUM, 7, sum + 8 * 0x20);
  b[off + CHKSUM + 6] = 0;
  b[off + CHKSUM + 7] = 0x20;
}

function finishBlock(b: Uint8Array, off: number, sum: number): void {
  putChecksum(b, off, sum + putMagic(b, off));
}

/** The fields entries of one owner share (a zeroed block): mode, ids, owner names, device. */
function putOwnerFields(b: Uint8Array, off: number, h: TarHeader, uname: string, gname: string): number {
  let sum = putOctal(b, off + MODE, NUM_SIZE, h.mode);
  sum += putOctal(b, off + UID, NUM_SIZE, h.uid);
  sum += putOctal(b, off + GID, NUM_SIZE, h.gid);
  sum += putString(b, off + UNAME, OWNER_SIZE, uname);
  sum += putString(b, off + GNAME, OWNER_SIZE, gname);
  sum += putOctal(b, off + DEVMAJOR, NUM_SIZE, h.devmajor);
  sum += putOctal(b, off + DEVMINOR, NUM_SIZE, h.devminor);
  return sum;
}

/** The fields of the entry itself (a zeroed block): name, size, mtime, type, link name. */
function putEntryFields(b: Uint8Array, off: number, h: TarHeader, name: string, linkname: string): number {
  let sum = putString(b, off + NAME, NAME_SIZE, name);
  sum += putOctal(b, off + SIZE, BIG_NUM_SIZE, h.size);
  sum += putOctal(b, off + MTIME, BIG_NUM_SIZE, h.mtime);
  b[off + TYPEFLAG] = h.typeflag;
  sum += h.typeflag;
  sum += putString(b, off + LINKNAME, NAME_SIZE, linkname);
  return sum;
}

type PaxValue = string | Buffer; // string values are byte strings

function checkPaxRecord(key: string, value: PaxValue, entry: string): void {
  const bad = key === '' || key.includes('=') ||
    (key === 'path' || key === 'linkpath' || key === 'uname' || key === 'gname'
      ? (typeof value === 'string' ? value.includes('\0') : value.includes(0))
      : key.includes('\0'));
  if (bad) {
    throw new Overlay2Error('ERR_NOT_SUPPORTED',
      `overlay2: ${toPrintable(entry)}: PAX cannot carry the record ${JSON.stringify(toPrintable(key))}`, { path: toPrintable(entry) });
  }
}

function toPrintable(byteString: string): string {
  return Buffer.from(byteString, 'latin1').toString('utf8');
}

/** Go's formatPAXRecord: "%d %s=%s\n" where %d counts the whole record, itself included. */
function paxRecordLength(keyLen: number, valueLen: number): number {
  let size = keyLen + valueLen + 3;
  size += String(size).length;
  const actual = String(size).length + 1 + keyLen + 1 + valueLen + 1;
  return actual !== size ? actual : size;
}

/**
 * Encodes tar headers into an internal buffer, reused from call to call: the result of encode()
 * is valid until the next call. Throws ERR_NOT_SUPPORTED for what Go's Writer refuses (a mode or
 * device number too large for its field, an xattr name with "=", more than 1 MiB of PAX records).
 */
export class TarHeaderEncoder {
  private buf: Buffer = Buffer.alloc(4 * BLOCK_SIZE);
  // the last user and group names found to fit a USTAR field: an export repeats a few of them
  private ustarUname = '';
  private ustarGname = '';
  // A USTAR block with the fields entries of one owner share (mode, uid, gid, uname, gname, device,
  // magic) and the sum of its bytes; the rest zero. An export repeats the same few owners and modes.
  private readonly owner = new Uint8Array(BLOCK_SIZE);
  private ownerSum = -1; // -1: not made yet
  private ownerMode = 0;
  private ownerUid = 0;
  private ownerGid = 0;
  private ownerUname = '';
  private ownerGname = '';
  private ownerDevmajor = 0;
  private ownerDevminor = 0;

  /** Writes the header straight into `out` at `pos` when it is one USTAR block and 512 bytes are
   *  free there (the common case: no copy); returns 512, or 0 when the caller must use encode(). */
  encodeInto(h: TarHeader, out: Buffer, pos: number): number {
    if (out.length - pos < BLOCK_SIZE || this.paxRecords(h) !== null) return 0;
    this.ustarBlock(h, out, pos);
    return BLOCK_SIZE;
  }

  encode(h: TarHeader): Buffer {
    const pax = this.paxRecords(h);
    if (pax === null) {
      const b = this.reserve(BLOCK_SIZE);
      this.ustarBlock(h, b, 0);
      return b.subarray(0, BLOCK_SIZE);
    }
    return this.encodePax(h, pax);
  }

  /** One USTAR block at `off` (a long name split into prefix/name): the owner's fields copied from
   *  the block made for the last owner (putOwnerFields and the magic), then the entry's. */
  private ustarBlock(h: TarHeader, b: Buffer, off: number): void {
    if (this.ownerSum < 0 || h.mode !== this.ownerMode || h.uid !== this.ownerUid || h.gid !== this.ownerGid ||
        h.uname !== this.ownerUname || h.gname !== this.ownerGname || h.devmajor !== this.ownerDevmajor ||
        h.devminor !== this.ownerDevminor) {
      this.makeOwner(h);
    }
    b.set(this.owner, off);
    let sum = this.ownerSum;
    let name = h.name;
    const split = name.length > NAME_SIZE ? splitUSTARPath(name) : null;
    if (split !== null) {
      sum += putString(b, off + PREFIX, PREFIX_SIZE, split[0]);
      name = split[1];
    }
    putChecksum(b, off, sum + putEntryFields(b, off, h, name, h.linkname));
  }

  private makeOwner(h: TarHeader): void {
    const o = this.owner;
    o.fill(0);
    this.ownerSum = putOwnerFields(o, 0, h, h.uname, h.gname) + putMagic(o, 0);
    this.ownerMode = h.mode;
    this.ownerUid = h.uid;
    this.ownerGid = h.gid;
    this.ownerUname = h.uname;
    this.ownerGname = h.gname;
    this.ownerDevmajor = h.devmajor;
    this.ownerDevminor = h.devminor;
  }

  /** The PAX records the header needs (sorted later), or null when a USTAR block holds it all.
   *  Throws what Go's Writer refuses. */
  private paxRecords(h: TarHeader): Array<[string, PaxValue]> | null {
    let pax: Array<[string, PaxValue]> | null = null;
    let ustar = true;
    const name = h.name;

    // Go's allowedFormats, narrowed to what Docker's headers can hold.
    if (name.length > NAME_SIZE || !isASCII(name)) {
      if (splitUSTARPath(name) === null) ustar = false;
      (pax ??= []).push(['path', name]);
    }
    if (h.linkname.length !== 0 && (h.linkname.length > NAME_SIZE || !isASCII(h.linkname))) {
      ustar = false;
      (pax ??= []).push(['linkpath', h.linkname]);
    }
    if (h.uname !== this.ustarUname) {
      if (h.uname.length > OWNER_SIZE || !isASCII(h.uname)) {
        ustar = false;
        (pax ??= []).push(['uname', h.uname]);
      } else {
        this.ustarUname = h.uname;
      }
    }
    if (h.gname !== this.ustarGname) {
      if (h.gname.length > OWNER_SIZE || !isASCII(h.gname)) {
        ustar = false;
        (pax ??= []).push(['gname', h.gname]);
      } else {
        this.ustarGname = h.gname;
      }
    }
    if (!fitsInOctal(NUM_SIZE, h.mode) || !fitsInOctal(NUM_SIZE, h.devmajor) || !fitsInOctal(NUM_SIZE, h.devminor)) {
      throw new Overlay2Error('ERR_NOT_SUPPORTED',
        `overlay2: ${toPrintable(name)}: mode or device number does not fit a tar header`, { path: toPrintable(name) });
    }
    if (!fitsInOctal(NUM_SIZE, h.uid)) {
      ustar = false;
      (pax ??= []).push(['uid', String(h.uid)]);
    }
    if (!fitsInOctal(NUM_SIZE, h.gid)) {
      ustar = false;
      (pax ??= []).push(['gid', String(h.gid)]);
    }
    if (!fitsInOctal(BIG_NUM_SIZE, h.size)) {
      ustar = false;
      (pax ??= []).push(['size', String(h.size)]);
    }
    if (!fitsInOctal(BIG_NUM_SIZE, h.mtime)) {
      ustar = false;
      (pax ??= []).push(['mtime', String(h.mtime)]);
    }
    if (h.xattrs !== null && h.xattrs.length > 0) {
      ustar = false;
      for (const [k, v] of h.xattrs) (pax ??= []).push(['SCHILY.xattr.' + k, v]);
    }
    if (pax !== null) for (const [k, v] of pax) checkPaxRecord(k, v, name);
    return ustar ? null : pax!;
  }

  private encodePax(h: TarHeader, pax: Array<[string, PaxValue]>): Buffer {
    // Records sorted by key (Go's sort.Strings = byte order; later duplicates cannot occur).
    pax.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let dataLen = 0;
    for (const [k, v] of pax) dataLen += paxRecordLength(k.length, v.length);
    if (dataLen > MAX_PAX_DATA) {
      throw new Overlay2Error('ERR_NOT_SUPPORTED',
        `overlay2: ${toPrintable(h.name)}: more than 1 MiB of PAX records (xattrs)`, { path: toPrintable(h.name) });
    }
    const padded = Math.ceil(dataLen / BLOCK_SIZE) * BLOCK_SIZE;
    const total = BLOCK_SIZE + padded + BLOCK_SIZE;
    const b = this.reserve(total);
    b.fill(0, 0, total);

    // The extended header entry (Go's writeRawFile): mode, uid, gid and mtime all 0.
    let sum = putString(b, NAME, NAME_SIZE, paxHeaderName(h.name));
    sum += putOctal(b, MODE, NUM_SIZE, 0);
    sum += putOctal(b, UID, NUM_SIZE, 0);
    sum += putOctal(b, GID, NUM_SIZE, 0);
    sum += putOctal(b, SIZE, BIG_NUM_SIZE, dataLen);
    sum += putOctal(b, MTIME, BIG_NUM_SIZE, 0);
    b[TYPEFLAG] = TYPE_XHEADER;
    finishBlock(b, 0, sum + TYPE_XHEADER);

    let pos = BLOCK_SIZE;
    for (const [k, v] of pax) {
      const len = paxRecordLength(k.length, v.length);
      pos += b.write(`${len} ${k}=`, pos, 'latin1');
      pos += typeof v === 'string' ? b.write(v, pos, 'latin1') : v.copy(b, pos);
      b[pos++] = 0x0a;
    }

    // The entry's own block: no prefix split, every string reduced to ASCII and truncated.
    this.fillBlock(b, BLOCK_SIZE + padded, h, h.name, toASCII);
    return b.subarray(0, total);
  }

  /** Go's templateV7Plus + setFormat on a zeroed block at `off`, every string through `str`. */
  private fillBlock(b: Buffer, off: number, h: TarHeader, name: string, str: (s: string) => string): void {
    const sum = putEntryFields(b, off, h, str(name), str(h.linkname)) + putOwnerFields(b, off, h, str(h.uname), str(h.gname));
    finishBlock(b, off, sum);
  }

  private reserve(n: number): Buffer {
    if (this.buf.length < n) this.buf = Buffer.alloc(Math.max(n, this.buf.length * 2));
    return this.buf;
  }
}

/** Zero bytes that pad `size` bytes of data to a whole block. */
export function blockPadding(size: number): number {
  return (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE;
}
