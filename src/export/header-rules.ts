// Docker's header rules for a layer export, shared by both sources (upper-source.ts and
// changes-source.ts); the rules themselves are listed at the top of export.ts.
import { Overlay2Error, isErrno } from '../errors.js';
import type { Shim, ShimPath } from '../native/shim.js';
import {
  TYPE_BLOCK, TYPE_CHAR, TYPE_DIR, TYPE_FIFO, TYPE_LINK, TYPE_REG, TYPE_SYMLINK, type TarHeader,
} from '../tar/header.js';
import { IdNames } from '../tar/names.js';
import { S_IFMT, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO } from '../core/records.js';
import type { ExportOptions } from './options.js';
import { TAR_OPAQUE_MARKER, TAR_WHITEOUT_PREFIX, isOverlayXattr, isWhiteoutDevice, tarWhiteoutName } from '../overlay-format.js';

export const CAPS_XATTR = 'security.capability';

/** What the header rules need to know about one file, from a scan record or an lstat. */
export interface FileFacts {
  mode: number;       // st_mode
  uid: number;        // host ids
  gid: number;
  size: number;
  mtimeSec: number;   // st_mtim.tv_sec: Go's Truncate(time.Second) of the mtime
  nlink: number;
  inodeKey: string;   // identifies the inode for hard-link detection
  devmajor: number;   // of st_rdev, for the types Docker reads it for
  devminor: number;
}

export class HeaderRules {
  private readonly names = new IdNames();
  private readonly seen = new Map<string, string>(); // inode → first name written
  readonly allXattrs: boolean;

  constructor(readonly opts: ExportOptions) {
    this.allXattrs = opts.xattrs === 'all';
    if (opts.xattrs !== undefined && opts.xattrs !== 'docker' && opts.xattrs !== 'all') {
      throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: xattrs must be 'docker' or 'all', not ${JSON.stringify(opts.xattrs)}`, { option: 'xattrs' });
    }
  }

  /**
   * Docker's addTarFile up to (not including) the whiteout conversion: FileInfoHeader, the
   * capability xattr, the hard-link map, the id maps. Null for a socket (Go refuses those).
   * `rel` is the byte-string path without a trailing slash.
   */
  header(rel: string, f: FileFacts, linkTarget: string, xattrs: Array<[string, Buffer]> | null): TarHeader | null {
    const type = f.mode & S_IFMT;
    let typeflag: number;
    let name = rel;
    let size = 0;
    switch (type) {
      case S_IFREG: typeflag = TYPE_REG; size = f.size; break;
      case S_IFDIR: typeflag = TYPE_DIR; name = rel + '/'; break;
      case S_IFLNK: typeflag = TYPE_SYMLINK; break;
      case S_IFCHR: typeflag = TYPE_CHAR; break;
      case S_IFBLK: typeflag = TYPE_BLOCK; break;
      case S_IFIFO: typeflag = TYPE_FIFO; break;
      default: return null; // S_IFSOCK and anything unknown: "archive/tar: sockets not supported"
    }
    const h: TarHeader = {
      name,
      linkname: typeflag === TYPE_SYMLINK ? linkTarget : '',
      typeflag,
      mode: f.mode & 0o177777,
      uid: f.uid,
      gid: f.gid,
      size,
      mtime: f.mtimeSec,
      uname: this.names.userName(f.uid),
      gname: this.names.groupName(f.gid),
      // Docker's setHeaderForSpecialDevice tests st_mode & (S_IFBLK|S_IFCHR) bitwise, which also
      // matches directories, symlinks and sockets; their st_rdev is 0 on every real filesystem.
      devmajor: f.mode & 0o060000 ? f.devmajor : 0,
      devminor: f.mode & 0o060000 ? f.devminor : 0,
      xattrs,
    };
    if (type !== S_IFDIR && f.nlink > 1) {
      const first = this.seen.get(f.inodeKey);
      if (first !== undefined) {
        h.typeflag = TYPE_LINK;
        h.linkname = first;
        h.size = 0;
      } else {
        this.seen.set(f.inodeKey, name);
      }
    }
    const whiteout = isWhiteoutDevice(f.mode, h.devmajor, h.devminor);
    if (!this.opts.idMappings.empty && !whiteout && !baseName(name).startsWith(TAR_WHITEOUT_PREFIX)) {
      const ids = this.opts.idMappings.toContainer(f.uid, f.gid);
      h.uid = ids.uid;
      h.gid = ids.gid;
    }
    return h;
  }

  /** A header for the D change of `rel` (naive export): an empty 0600 file owned by root. */
  deletedHeader(rel: string): TarHeader {
    return {
      name: tarWhiteoutName(rel),
      linkname: '',
      typeflag: TYPE_REG,
      mode: 0o600,
      uid: 0,
      gid: 0,
      size: 0,
      mtime: 0,
      uname: this.names.userName(0),
      gname: this.names.groupName(0),
      devmajor: 0,
      devminor: 0,
      xattrs: null,
    };
  }
}

/** overlayWhiteoutConverter.ConvertWrite for a char device 0/0: rename to .wh.NAME, 0600 file. */
export function toWhiteout(h: TarHeader): void {
  h.name = tarWhiteoutName(h.name);
  h.mode = 0o600;
  h.typeflag = TYPE_REG;
  h.size = 0;
}

/** The entry Docker writes after an opaque directory's own. */
export function opaqueMarker(dir: TarHeader): TarHeader {
  return {
    name: dir.name + TAR_OPAQUE_MARKER, // dir.name ends with "/"
    linkname: '',
    typeflag: TYPE_REG,
    mode: dir.mode & 0o777,
    uid: dir.uid,
    gid: dir.gid,
    size: 0,
    mtime: 0,
    uname: dir.uname,
    gname: dir.gname,
    devmajor: 0,
    devminor: 0,
    xattrs: null,
  };
}

function baseName(name: string): string {
  let end = name.length;
  while (end > 1 && name.charCodeAt(end - 1) === 0x2f) end--;
  return name.slice(name.lastIndexOf('/', end - 1) + 1, end);
}

/** Docker's ReadSecurityXattrToTarHeader: a VFS_CAP_REVISION_3 value becomes revision 2 (20 bytes),
 *  since the namespaced root uid it carries means nothing outside the user namespace. */
function dockerCapability(raw: Buffer): Buffer {
  if (raw.length > 3 && raw[3] === 3) {
    const v2 = Buffer.from(raw.subarray(0, Math.min(20, raw.length)));
    v2[3] = 2;
    return v2;
  }
  return raw;
}

export const ASCII_ONLY = /^[\x00-\x7f]*$/;

/** The path of `rel` (a byte string) under the root as the shim takes it: text when ASCII, else
 *  the exact bytes (a name that is not UTF-8 included). */
export function shimPath(rootUtf8: string, rel: string): ShimPath {
  if (ASCII_ONLY.test(rel)) return rootUtf8 + '/' + rel;
  return Buffer.concat([Buffer.from(rootUtf8 + '/'), Buffer.from(rel, 'latin1')]);
}

/** Xattrs of one entry for its header: the capability (Docker's rule) and, with 'all', the rest. */
export function readXattrs(shim: Shim, path: ShimPath | null, all: boolean, knownCaps: Buffer | null | undefined): Array<[string, Buffer]> | null {
  let caps = knownCaps;
  if (caps === undefined) {
    caps = null;
    if (path !== null) {
      try {
        caps = shim.lgetxattr(path, CAPS_XATTR);
      } catch {
        caps = null; // Docker ignores every error reading it
      }
    }
  }
  let out: Array<[string, Buffer]> | null = caps !== null ? [[CAPS_XATTR, dockerCapability(caps)]] : null;
  if (all && path !== null) {
    let names: string[];
    try {
      names = shim.llistxattr(path);
    } catch (e) {
      if (isErrno(e, 'EOPNOTSUPP') || isErrno(e, 'ENOTSUP')) return out; // no xattrs on this filesystem
      throw e;
    }
    for (const name of names) {
      if (name === CAPS_XATTR || isOverlayXattr(name)) continue;
      const value = shim.lgetxattr(path, name);
      if (value === null) continue; // removed meanwhile
      (out ??= []).push([Buffer.from(name, 'utf8').toString('latin1'), value]);
    }
  }
  return out;
}
