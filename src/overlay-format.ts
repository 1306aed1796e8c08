// Overlayfs's on-disk vocabulary, in one place: how an upper dir records deletions, opaque dirs, renames
// and metadata-only copies (kernel Documentation/filesystems/overlayfs.rst), and how a layer tar records
// them (the AUFS names Docker kept: ".wh.NAME", ".wh..wh..opq"). Everything that reads or writes those
// marks — the scanner's xattr plan, apply, export, archive safety, the feature probes — takes them from here.

/** A whiteout in an upper dir is a character device 0/0 named like the deleted entry. */
export const WHITEOUT_DEVICE = { major: 0, minor: 0 } as const;

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

/** True for overlay's own bookkeeping xattrs in either namespace. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

/** Whiteouts in a layer tar: ".wh.NAME" deletes NAME; ".wh..wh..opq" makes its directory opaque;
 *  other ".wh..wh." names are AUFS metadata (hard-link dirs, plink) that overlay never uses. */
export const TAR_WHITEOUT_PREFIX = '.wh.';
export const TAR_OPAQUE_MARKER = '.wh..wh..opq';
export const TAR_AUFS_META_PREFIX = '.wh..wh.';
