// Reading directories with getdents64: the one syscall wrapper, the one walk over a buffer of
// entries, and the one reader every directory walk of the shim (scanner, direntTypes, tree removal)
// is built on.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DENTS_CHUNK (32 * 1024) // getdents64 buffer step

struct dirent64_raw { uint64_t d_ino; int64_t d_off; unsigned short d_reclen; unsigned char d_type; char d_name[]; };
// scanner.c reads an entry's d_type as the byte before its name
_Static_assert(offsetof(struct dirent64_raw, d_name) == offsetof(struct dirent64_raw, d_type) + 1, "d_type right before d_name");

bool dot_or_dotdot(const char *name);
long dirents_read(int fd, uint8_t *buf, size_t size); // one getdents64
// The next entry of buf[*pos, len), "." and ".." skipped; NULL at the end.
const struct dirent64_raw *dirents_step(const uint8_t *buf, size_t len, size_t *pos);

// A directory read in DENTS_CHUNK steps. With keep, every step is appended (buf grows, earlier
// entries stay valid as offsets), so a whole directory can be sorted once read.
struct dir_stream {
  int fd;
  bool keep, eof;
  uint8_t *buf;
  size_t cap, len, pos;
};
// The next entry; NULL at the end (errno 0) or on failure (errno set).
const struct dirent64_raw *dir_stream_next(struct dir_stream *d);
void dir_stream_free(struct dir_stream *d); // frees the buffer; the fd stays the caller's
