// Overlayfs's on-disk vocabulary, in one place: how an upper dir records deletions, opaque dirs, renames
// and metadata-only copies (kernel Documentation/filesystems/overlayfs.rst), and how a layer tar records
// them (the AUFS names Docker kept: ".wh.NAME", ".wh..wh..opq"). Everything that reads or writes those
// marks — the scanner's xattr plan, apply, export, archive safety, the feature probes — takes them from here.

/** A whiteout in an upper dir is a character device 0/0 named like the deleted entry. */
export const WHITEOUT_DEVICE = { major: 0, minor: 0 } as const;

const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;

/** True for an upper-dir entry that records a deletion: st_mode a char device, st_rdev 0/0. */
export function isWhiteoutDevice(mode: number, major: number, minor: number): boolean {
  return (mode & S_IFMT) === S_IFCHR && major === WHITEOUT_DEVICE.major && minor === WHITEOUT_DEVICE.minor;
}

/** The xattr namespace overlay uses: `trusted.` as root, `user.` with the `userxattr` mount option
 *  (in a user namespace, kernel ≥ 5.11). */
export function overlayXattrPrefix(userxattr: boolean): string {
  return userxattr ? 'user.overlay.' : 'trusted.overlay.';
}

/** Suffixes of the xattrs overlay reads (after the prefix). */
export const OPAQUE = 'opaque';
export const REDIRECT = 'redirect';
export const METACOPY = 'metacopy';

/** A directory is opaque only when its opaque xattr's value is exactly "y" (fs/overlayfs/util.c). */
export const OPAQUE_VALUE = 'y';

export function opaqueXattr(userxattr: boolean): string {
  return overlayXattrPrefix(userxattr) + OPAQUE;
}

export function redirectXattr(userxattr: boolean): string {
  return overlayXattrPrefix(userxattr) + REDIRECT;
}

/** True when an opaque xattr's value makes the directory opaque. */
export function isOpaqueValue(value: Buffer | string | null): boolean {
  return value !== null && value.toString() === OPAQUE_VALUE;
}

/** True for overlay's own xattrs in either namespace. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith(overlayXattrPrefix(false)) || name.startsWith(overlayXattrPrefix(true));
}

/** The opaque xattr in either namespace (a layer tar may carry either). */
export function isOpaqueXattr(name: string): boolean {
  return name === opaqueXattr(false) || name === opaqueXattr(true);
}

/** Overlay xattrs that are kernel bookkeeping, not layer content: every one but opaque (redirect,
 *  metacopy, origin, impure, nlink, upper, ...). */
export function isOverlayBookkeeping(name: string): boolean {
  return isOverlayXattr(name) && !isOpaqueXattr(name);
}

/** Whiteouts in a layer tar: ".wh.NAME" deletes NAME; ".wh..wh..opq" makes its directory opaque;
 *  other ".wh..wh." names are AUFS metadata (hard-link dirs, plink) that overlay never uses. */
export const TAR_WHITEOUT_PREFIX = '.wh.';
export const TAR_OPAQUE_MARKER = '.wh..wh..opq';
export const TAR_AUFS_META_PREFIX = '.wh..wh.';

/** The tar name of the whiteout that deletes `path` ("a/b" → "a/.wh.b"). */
export function tarWhiteoutName(path: string): string {
  const slash = path.lastIndexOf('/');
  return path.slice(0, slash + 1) + TAR_WHITEOUT_PREFIX + path.slice(slash + 1);
}
