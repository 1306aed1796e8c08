// The record contract, C side (the source of truth is assembly/records.ts; src/core/records.ts mirrors
// it and test/records.test.ts checks the mirror, the WASM table, this header's offsets and what the
// scanner writes). The compiler checks every offset below against the struct.
#pragma once
#include <stddef.h>
#include <stdint.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "records are little-endian; this shim writes host order");

struct scan_record {
  uint64_t ino;
  int64_t size;
  int64_t mtime_sec;
  uint32_t mtime_nsec;
  uint32_t mode;
  uint32_t uid;
  uint32_t gid;
  uint32_t nlink;     // FLAG_FAILED: the positive errno
  uint32_t dev;       // major << 20 | minor
  uint32_t rdev;
  uint32_t name_off;
  uint16_t name_len;
  uint16_t extra_len; // extra bytes follow the name in the heap
  uint16_t depth;
  uint16_t flags;
};
#define RECORD_SIZE 64
_Static_assert(sizeof(struct scan_record) == RECORD_SIZE, "record size");
_Static_assert(offsetof(struct scan_record, ino) == 0, "ino");
_Static_assert(offsetof(struct scan_record, size) == 8, "size");
_Static_assert(offsetof(struct scan_record, mtime_sec) == 16, "mtimeSec");
_Static_assert(offsetof(struct scan_record, mtime_nsec) == 24, "mtimeNsec");
_Static_assert(offsetof(struct scan_record, mode) == 28, "mode");
_Static_assert(offsetof(struct scan_record, uid) == 32, "uid");
_Static_assert(offsetof(struct scan_record, gid) == 36, "gid");
_Static_assert(offsetof(struct scan_record, nlink) == 40, "nlink");
_Static_assert(offsetof(struct scan_record, dev) == 44, "dev");
_Static_assert(offsetof(struct scan_record, rdev) == 48, "rdev");
_Static_assert(offsetof(struct scan_record, name_off) == 52, "nameOff");
_Static_assert(offsetof(struct scan_record, name_len) == 56, "nameLen");
_Static_assert(offsetof(struct scan_record, extra_len) == 58, "extraLen");
_Static_assert(offsetof(struct scan_record, depth) == 60, "depth");
_Static_assert(offsetof(struct scan_record, flags) == 62, "flags");

// The one record flag the shim sets itself; the xattr flags are bits the caller's plan names.
#define FLAG_FAILED 0x8000
// SCAN_INLINE_DATA: the file's st_size bytes of content follow the extra in the heap.
#define FLAG_DATA 0x2000

// The walk flags of scanOpen (the xattr SCAN_* bits are turned into an xattr plan by the caller).
#define SCAN_SORTED 1
#define SCAN_NO_RECURSE 64
// The whole tree in no particular order, walked by two scanNext calls at once that share out its
// directories (scanner.c); not with SCAN_SORTED or SCAN_NO_RECURSE.
#define SCAN_SHARED 128
// The sorted walk (with SCAN_SORTED) by two scanNext calls at once, in segments of the pre-order that
// the caller puts together (scanner.c): each batch says its segment, the one a new segment follows,
// and when a segment is complete.
#define SCAN_SPLIT 256
// Regular files, symlinks and FIFOs (by the directory's d_type) are not stat'ed: their record holds the
// file type alone (mode S_IFxxx, every other field 0), for a caller that stats the few it needs later
// (the native change walk: only an entry a lower dir also has is compared). Directories, devices,
// sockets and entries of unknown d_type are stat'ed as ever.
#define SCAN_STAT_DIRS_ONLY 1024
// A record's size is st_blocks * 512 (the bytes allocated, as du counts them) instead of st_size. The
// shim only picks the stat field; what is summed and how links count is the caller's (assembly/usage.ts).
#define SCAN_SIZE_ALLOCATED 2048
// Regular files of 1 to 2^k bytes (k = SCAN_INLINE_DATA_LOG2(flags), 0: none) are read on the scan's
// pool thread into the heap (FLAG_DATA) — opened by the walk, which stats them and reads their xattrs
// through that fd, then read and closed after the batch's walk — when they still hold their listed
// size; any other file (or one that cannot be opened or shrank) comes without data.
#define SCAN_INLINE_DATA_LOG2(f) (((f) >> 25) & 0x1f)
