// Extended attributes: the one reader every xattr read of the shim goes through (the exports here and
// the scanner's plan).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

// A growable byte buffer (kept across reads so a scan allocates once).
struct xbuf { uint8_t *p; size_t cap, len; };
int xbuf_reserve(struct xbuf *b, size_t n); // 0, or -1 with errno ENOMEM

// Whose attributes: a path (final symlink not followed), an open fd, or entry `path` of directory
// `fd` (final symlink not followed; getxattrat/listxattrat where the kernel has them).
enum xattr_via { XATTR_PATH, XATTR_FD, XATTR_AT };
struct xattr_target { enum xattr_via via; int fd; const char *path; };

// Reads attribute `name` (NULL: the NUL-separated name list) into b, growing b when the value does
// not fit (ERANGE) and retrying if it grows meanwhile. Returns the length (b->len), or -1 with errno set
// (ENODATA: no such attribute).
ssize_t xattr_read(const struct xattr_target *t, const char *name, struct xbuf *b);

// Whether a name list read by xattr_read holds `name`.
int xattr_list_has(const struct xbuf *list, const char *name);
