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
// A split scan's copy of a directory another shard owns (see SCAN_SHARD_* below).
#define FLAG_SHARD_COPY 0x4000
// SCAN_INLINE_DATA: the file's st_size bytes of content follow the extra in the heap.
#define FLAG_DATA 0x2000

// The walk flags of scanOpen (the xattr SCAN_* bits are turned into an xattr plan by the caller).
#define SCAN_SORTED 1
#define SCAN_NO_RECURSE 64
// A split scan (shard `index` of `count`): entries down to depth `depth` belong to the shard that
// hash(name) % count names; a shard stats and emits only its own, and walks into every directory
// above `depth` (emitting the ones it does not own with FLAG_SHARD_COPY, so paths can be rebuilt).
// The shards together emit every entry once (copies aside). Packed into the flags:
#define SCAN_SHARD_COUNT(f) (((f) >> 8) & 0xf)  // 0 or 1: not split
#define SCAN_SHARD_INDEX(f) (((f) >> 12) & 0xf)
#define SCAN_SHARD_DEPTH(f) (((f) >> 16) & 0xff)
// Regular files of 1 to 2^k bytes (k = SCAN_INLINE_DATA_LOG2(flags), 0: none) are read on the scan's
// thread into the heap (FLAG_DATA) — open, read, close beside the stat — when they still hold their
// listed size; any other file (or one that cannot be opened or shrank) comes without data.
#define SCAN_INLINE_DATA_LOG2(f) (((f) >> 25) & 0x1f)
