// THE record contract between the C scanner (shim/records.h), this WASM core and the
// TypeScript host (src/core/records.ts mirrors every constant below; test/records.test.ts checks
// both sides agree). Change it here first, then the two mirrors, then bump RECORD_VERSION.
//
// A scan batch is two regions: RECORDS (fixed 64-byte records) and HEAP (names and extra bytes).
// All integers little-endian. Offsets are from the start of the record.
//
//  off size field       meaning
//    0    8 ino         st_ino
//    8    8 size        st_size (signed); with SCAN_SIZE_ALLOCATED: st_blocks * 512 (bytes allocated)
//   16    8 mtimeSec    st_mtim.tv_sec (signed)
//   24    4 mtimeNsec   st_mtim.tv_nsec
//   28    4 mode        st_mode, file-type bits included
//   32    4 uid         st_uid
//   36    4 gid         st_gid
//   40    4 nlink       st_nlink; for a FAILED lookup: the positive errno instead
//   44    4 dev         st_dev in the kernel's 32-bit encoding: major << 20 | minor
//   48    4 rdev        st_rdev, same encoding (0 unless char/block device)
//   52    4 nameOff     byte offset of the entry's base name in HEAP (lookup batches: in the names buffer)
//   56    2 nameLen     length of the base name in bytes (no NUL)
//   58    2 extraLen    bytes of "extra" stored in HEAP right after the name (see flags)
//   60    2 depth       1 for a child of the scanned root, 2 for a grandchild, ...
//   62    2 flags       FLAG_* below
//
// Scans are depth-first pre-order (a directory's record comes before its children's); with
// SCAN_SORTED the entries of each directory come in byte order (Go's filepath.Walk order). The
// root itself is not emitted: a path is rebuilt from the names on a stack indexed by depth.

export const RECORD_VERSION: u32 = 2; // 2: SCAN_SIZE_ALLOCATED
export const RECORD_SIZE: u32 = 64;

export const OFF_INO: u32 = 0;
export const OFF_SIZE: u32 = 8;
export const OFF_MTIME_SEC: u32 = 16;
export const OFF_MTIME_NSEC: u32 = 24;
export const OFF_MODE: u32 = 28;
export const OFF_UID: u32 = 32;
export const OFF_GID: u32 = 36;
export const OFF_NLINK: u32 = 40;
export const OFF_DEV: u32 = 44;
export const OFF_RDEV: u32 = 48;
export const OFF_NAME_OFF: u32 = 52;
export const OFF_NAME_LEN: u32 = 56;
export const OFF_EXTRA_LEN: u32 = 58;
export const OFF_DEPTH: u32 = 60;
export const OFF_FLAGS: u32 = 62;

// flags
export const FLAG_OPAQUE: u16 = 1;      // directory with overlay.opaque = "y" (trusted. or user. per scan flags)
export const FLAG_REDIRECT: u16 = 2;    // directory with overlay.redirect; extra = its value unless SCAN_CAPS took the extra
export const FLAG_METACOPY: u16 = 4;    // regular file with overlay.metacopy present
export const FLAG_CAPS: u16 = 8;        // any entry with security.capability; extra = its raw bytes
export const FLAG_FAILED: u16 = 0x8000; // lookup found nothing: mode = 0, nlink = errno

// scan / lookup option flags (the `flags` argument of scanOpen and lookupBatch)
export const SCAN_SORTED: u32 = 1;        // entries of each directory in byte order
export const SCAN_OPAQUE: u32 = 2;        // read overlay.opaque on directories
export const SCAN_USER_XATTR: u32 = 4;    // overlay xattrs are "user.overlay.*" instead of "trusted.overlay.*"
export const SCAN_CAPS: u32 = 8;          // read security.capability on every entry (as moby's naive diff does)
export const SCAN_REDIRECT: u32 = 16;     // read overlay.redirect on directories
export const SCAN_METACOPY: u32 = 32;     // read overlay.metacopy on regular files
export const SCAN_NO_RECURSE: u32 = 64;   // only the root's own entries (depth 1)
export const SCAN_SIZE_ALLOCATED: u32 = 2048; // size = st_blocks * 512 instead of st_size (disk usage, as du counts it)

// file-type bits of st_mode
export const S_IFMT: u32 = 0o170000;
export const S_IFSOCK: u32 = 0o140000;
export const S_IFLNK: u32 = 0o120000;
export const S_IFREG: u32 = 0o100000;
export const S_IFBLK: u32 = 0o060000;
export const S_IFDIR: u32 = 0o040000;
export const S_IFCHR: u32 = 0o020000;
export const S_IFIFO: u32 = 0o010000;
