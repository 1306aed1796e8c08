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

/** Which attributes the scanner reads for one kind of entry: `flags` are tested for presence (and,
 *  with `equals`, for that exact value) and set `bit` in the record's flags; `extra`'s raw value
 *  becomes the record's extra bytes (and sets its bit when present). */
export interface XattrKindPlan {
  flags: { name: string; bit: number; equals?: string }[];
  extra?: { name: string; bit: number };
}

/** The scanner's xattr plan: one per kind of entry (directories, regular files, everything else). */
export interface XattrPlan { dir: XattrKindPlan; reg: XattrKindPlan; other: XattrKindPlan }

/** What a scan of an upper dir asks for, and the record flag bits (src/core/records.ts) to report them. */
export interface UpperXattrWants {
  userxattr: boolean;
  opaque: boolean;    // directories: overlay.opaque = "y"
  redirect: boolean;  // directories: overlay.redirect (the extra, unless caps take it: then a flag)
  metacopy: boolean;  // regular files: overlay.metacopy present
  caps: boolean;      // every entry: security.capability as the extra (moby compares it on every entry)
  bits: { opaque: number; redirect: number; metacopy: number; caps: number };
}

/** Overlay's rules for which entry carries which mark, as the scanner's plan: opaque and redirect
 *  live on directories only, metacopy on regular files only, capabilities on anything. */
export function upperXattrPlan(w: UpperXattrWants): XattrPlan {
  const prefix = overlayXattrPrefix(w.userxattr);
  const caps = w.caps ? { name: CAPABILITY_XATTR, bit: w.bits.caps } : undefined;
  const dir: XattrKindPlan = { flags: [] };
  if (w.opaque) dir.flags.push({ name: prefix + OPAQUE, bit: w.bits.opaque, equals: OPAQUE_VALUE });
  if (w.redirect && caps) dir.flags.push({ name: prefix + REDIRECT, bit: w.bits.redirect });
  const dirExtra = caps ?? (w.redirect ? { name: prefix + REDIRECT, bit: w.bits.redirect } : undefined);
  if (dirExtra) dir.extra = dirExtra;
  const reg: XattrKindPlan = { flags: w.metacopy ? [{ name: prefix + METACOPY, bit: w.bits.metacopy }] : [] };
  const other: XattrKindPlan = { flags: [] };
  if (caps) { reg.extra = caps; other.extra = caps; }
  return { dir, reg, other };
}

/** File capabilities: compared on every entry by moby's naive diff, and carried in layer tars. */
export const CAPABILITY_XATTR = 'security.capability';
