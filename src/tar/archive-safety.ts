// The rules that keep a layer tar applied by apply.ts inside its layer.
//
// Names are byte strings (src/util/byte-names.ts): every rule below looks at the bytes '/', '.' and
// the whiteout prefix, so it holds for names that are not UTF-8 as it does for any other.
//
// Safety: every entry is created relative to a directory fd opened with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), and only its last component is created, with the
// *at calls that never follow a final symlink. Rules, decided here and tested in test/hostile:
// - Names are cleaned like filepath.Clean after a leading "/" is dropped (so "/etc/x" is "etc/x",
//   as moby joins it under the root); a ".." that would climb above the root is ERR_UNSAFE_ARCHIVE
//   (moby maps "/../x" to "x"; we refuse it: no honest archive has one).
// - A path that goes through a symlink, whether the archive made it or it was already on disk, is
//   ERR_UNSAFE_ARCHIVE (moby follows such symlinks inside a chroot; we never follow them).
// - A relative symlink target that climbs above the root is ERR_UNSAFE_ARCHIVE (moby's rule);
//   absolute targets are stored as they are, as moby does.
// - Hardlink targets are cleaned like names and resolved beneath the root without following
//   symlinks; a target that escapes or is a directory is ERR_UNSAFE_ARCHIVE, a target that does not
//   exist is ERR_BAD_ARCHIVE. A hardlink entry links and changes nothing on the shared inode (GNU
//   tar's behaviour; moby re-applies the link header's owner/mode, which Docker's tars make equal).
// - Whiteouts: ".wh..wh..opq" marks its directory opaque; other ".wh..wh.*" (AUFS metadata, e.g.
//   ".wh..wh.plnk/...") are skipped with everything under them; ".wh.X" deletes X, where X must not
//   be "", "." or ".."; a ".wh.*" component that is not the last one is ERR_UNSAFE_ARCHIVE.
// - Kernel bookkeeping xattrs (trusted.overlay.* / user.overlay.* other than opaque) found in an
//   archive are not applied: they describe another overlay's files. An archive's opaque xattr is
//   written under the name this driver uses (trusted. or user.).
import { Overlay2Error } from '../errors.js';
import { RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS } from '../native/constants.js';
import { displayName } from '../util/byte-names.js';

export const RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

/** `name` is the entry's byte string; the message shows its UTF-8 decoding. */
export function unsafe(name: string, why: string): Overlay2Error {
  const shown = displayName(name);
  return new Overlay2Error('ERR_UNSAFE_ARCHIVE', `overlay2: unsafe archive: ${why} (entry ${JSON.stringify(shown)})`, { path: shown });
}

export function bad(name: string, why: string): Overlay2Error {
  const shown = displayName(name);
  return new Overlay2Error('ERR_BAD_ARCHIVE', `overlay2: bad archive: ${why} (entry ${JSON.stringify(shown)})`, { path: shown });
}

/** A name relative to the root, cleaned: "" for the root itself; null when ".." climbs above it. */
export function cleanName(name: string): string | null {
  // Fast path: components that are all plain (no "", ".", ".."), an optional trailing "/".
  const n = name.length;
  let start = 0;
  let plain = n > 0 && name.charCodeAt(0) !== 0x2f;
  if (plain) {
    for (let i = 0; i <= n; i++) {
      if (i === n || name.charCodeAt(i) === 0x2f) {
        const len = i - start;
        if (len === 0) {
          if (i === n && i > 0) break; // the trailing slash
          plain = false;
          break;
        }
        if (name.charCodeAt(start) === 0x2e && (len === 1 || (len === 2 && name.charCodeAt(start + 1) === 0x2e))) {
          plain = false;
          break;
        }
        start = i + 1;
      }
    }
  }
  if (plain) return name.charCodeAt(n - 1) === 0x2f ? name.slice(0, n - 1) : name;
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) return null;
      out.pop();
    } else {
      out.push(c);
    }
  }
  return out.join('/');
}

/** True when a relative symlink target, placed in `parentPath`, climbs above the root. */
export function symlinkEscapes(parentPath: string, target: string): boolean {
  if (target.charCodeAt(0) === 0x2f) return false;
  if (!target.includes('..')) return false;
  let depth = parentPath === '' ? 0 : parentPath.split('/').length;
  for (const c of target.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (--depth < 0) return true;
    } else {
      depth++;
    }
  }
  return false;
}
