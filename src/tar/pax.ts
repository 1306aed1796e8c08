// PAX extended header records ("LEN KEY=VALUE\n"), parsed as bytes: values of SCHILY.xattr.* are
// binary (security.capability is a packed struct) and must reach fsetxattr byte for byte, which a
// UTF-8 decode of the whole header (what tar-stream does) cannot guarantee.
import { isUtf8 } from 'node:buffer';

/** What a PAX header (local 'x') says about the entry that follows it. Unset fields are undefined. */
export interface PaxRecords {
  /** path and linkpath are byte strings (src/util/byte-names.ts): Go writes a name that is not
   *  UTF-8 into these records as its raw bytes, and reads them back the same way. */
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  mtime?: PaxTime;
  atime?: PaxTime;
  /** SCHILY.xattr.NAME records, in archive order (a repeated name: the last one wins when applied). */
  xattrs?: Array<[string, Buffer]>;
  /** The first GNU.sparse.* key seen: sparse files are refused by the reader. */
  sparse?: string;
}

export interface PaxTime {
  sec: number;
  nsec: number;
}

/** Thrown for a malformed record; the reader turns it into ERR_BAD_ARCHIVE naming the entry. */
export class PaxError extends Error {}

const SPACE = 0x20, EQUALS = 0x3d, NEWLINE = 0x0a, ZERO = 0x30, NINE = 0x39;

/** Parses the records of one PAX header payload. */
export function parsePax(buf: Buffer): PaxRecords {
  const out: PaxRecords = {};
  let pos = 0;
  while (pos < buf.length) {
    // A run of NULs pads some writers' payloads to the block: accept it only at the end.
    if (buf[pos] === 0) {
      for (let i = pos; i < buf.length; i++) if (buf[i] !== 0) throw new PaxError('garbage after PAX records');
      break;
    }
    let len = 0;
    let i = pos;
    for (; i < buf.length && buf[i] !== SPACE; i++) {
      const c = buf[i];
      if (c < ZERO || c > NINE || i - pos > 8) throw new PaxError('bad PAX record length');
      len = len * 10 + (c - ZERO);
    }
    if (i === pos || i >= buf.length || len < i - pos + 3 || pos + len > buf.length) {
      throw new PaxError('bad PAX record length');
    }
    const end = pos + len; // one past the '\n'
    if (buf[end - 1] !== NEWLINE) throw new PaxError('PAX record does not end with a newline');
    const keyStart = i + 1;
    const eq = buf.indexOf(EQUALS, keyStart);
    if (eq < 0 || eq >= end - 1 || eq === keyStart) throw new PaxError('PAX record without a key');
    const key = buf.toString('latin1', keyStart, eq);
    if (key.includes('\0')) throw new PaxError('NUL in a PAX key');
    const value = buf.subarray(eq + 1, end - 1);
    applyRecord(out, key, value);
    pos = end;
  }
  return out;
}

function applyRecord(out: PaxRecords, key: string, value: Buffer): void {
  if (key.startsWith('SCHILY.xattr.')) {
    const name = key.slice('SCHILY.xattr.'.length);
    if (name.length === 0) throw new PaxError('empty xattr name in PAX record');
    // The key was read as latin1 to find the prefix; the xattr name itself is UTF-8 on disk.
    const utf8Name = Buffer.from(name, 'latin1');
    if (!isUtf8(utf8Name)) throw new PaxError('xattr name is not UTF-8');
    (out.xattrs ??= []).push([utf8Name.toString('utf8'), Buffer.from(value)]);
    return;
  }
  if (key.startsWith('GNU.sparse.')) {
    out.sparse ??= key;
    return;
  }
  // An empty value deletes the keyword (POSIX): the ustar field is used instead.
  switch (key) {
    case 'path':
      out.path = value.length === 0 ? undefined : textValue(value, key);
      break;
    case 'linkpath':
      out.linkpath = value.length === 0 ? undefined : textValue(value, key);
      break;
    case 'size':
      out.size = value.length === 0 ? undefined : decimalValue(value, key);
      break;
    case 'uid':
      out.uid = value.length === 0 ? undefined : idValue(value, key);
      break;
    case 'gid':
      out.gid = value.length === 0 ? undefined : idValue(value, key);
      break;
    case 'mtime':
      out.mtime = value.length === 0 ? undefined : timeValue(value, key);
      break;
    case 'atime':
      out.atime = value.length === 0 ? undefined : timeValue(value, key);
      break;
    default:
      // uname, gname, ctime, comment, charset, hdrcharset, LIBARCHIVE.*, vendor keys: not applied
      // (moby's archive/tar reader ignores them too).
      break;
  }
}

function textValue(value: Buffer, key: string): string {
  if (value.includes(0)) throw new PaxError(`NUL in PAX ${key}`);
  return value.toString('latin1');
}

function decimalValue(value: Buffer, key: string): number {
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c < ZERO || c > NINE) throw new PaxError(`bad PAX ${key} ${JSON.stringify(value.toString('latin1'))}`);
    n = n * 10 + (c - ZERO);
  }
  if (!Number.isSafeInteger(n)) throw new PaxError(`PAX ${key} overflows`);
  return n;
}

function idValue(value: Buffer, key: string): number {
  const n = decimalValue(value, key);
  if (n > 0xffffffff) throw new PaxError(`PAX ${key} ${n} is out of range`);
  return n;
}

/** "SECONDS[.FRACTION]", seconds possibly negative; the fraction is kept to the nanosecond. */
function timeValue(value: Buffer, key: string): PaxTime {
  const text = value.toString('latin1');
  const m = /^(-?)(\d{1,19})(?:\.(\d*))?$/.exec(text);
  if (!m) throw new PaxError(`bad PAX ${key} ${JSON.stringify(text)}`);
  let sec = Number(m[2]);
  if (!Number.isSafeInteger(sec)) throw new PaxError(`PAX ${key} overflows`);
  let nsec = m[3] ? Number((m[3] + '000000000').slice(0, 9)) : 0;
  if (m[1] === '-') {
    // -1.25 is 1.25 s before the epoch: sec -2, nsec 0.75e9
    sec = -sec;
    if (nsec > 0) {
      sec -= 1;
      nsec = 1e9 - nsec;
    }
  }
  return { sec, nsec };
}
