// The thin image's layer: a tar of one file, the manifest, written the same way every time (mode
// 0644, uid/gid 0, no owner names, mtime 0), so the same manifest is always the same diffID.
import { END_OF_ARCHIVE, TYPE_REG, TarHeaderEncoder, blockPadding } from '../tar/header.js';
import type { ManifestName } from './manifest.js';

export function manifestTar(bytes: Buffer, name: ManifestName = 'thin.json'): Buffer {
  const header = Buffer.from(new TarHeaderEncoder().encode({
    name, linkname: '', typeflag: TYPE_REG, mode: 0o644, uid: 0, gid: 0, size: bytes.length, mtime: 0,
    uname: '', gname: '', devmajor: 0, devminor: 0, xattrs: null,
  }));
  return Buffer.concat([header, bytes, Buffer.alloc(blockPadding(bytes.length)), END_OF_ARCHIVE]);
}
