// The scanner's xattr plan: which attributes to read for each file type, and which record flag bit
// each one sets. The caller builds it (src/native/xattr-plan.ts, from src/overlay-format.ts) and
// passes it once per scanOpen / lookupBatch; no attribute name or value is known here.
//
// Encoding (a Uint8Array; an empty one or null: read no attributes), for each of the PLAN_KINDS file
// kinds in order (directories, regular files, every other type):
//   u8 ntests                      attributes tested as flags (at most PLAN_MAX_TESTS)
//   ntests x { u16le bit, u8 nameLen, name, u8 hasValue, [u8 valueLen, value] }
//                                  bit is set when the attribute exists (and equals value, if given)
//   u8 hasExtra, [u16le bit, u8 nameLen, name]
//                                  this attribute's raw value is the record's extra; bit set if present
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLAN_KINDS 3 // 0 directories, 1 regular files, 2 every other type
#define PLAN_MAX_TESTS 4

struct xattr_test {
  uint16_t bit;
  bool has_value;
  uint8_t value_len;
  char name[256];
  uint8_t value[255];
};

struct xattr_kind_plan {
  uint8_t ntests;
  struct xattr_test tests[PLAN_MAX_TESTS];
  bool has_extra;
  uint16_t extra_bit;
  char extra_name[256];
};

struct xattr_plan {
  bool any; // false: read no attributes at all
  struct xattr_kind_plan kinds[PLAN_KINDS];
};

// Decodes a plan; false if the bytes are malformed.
bool xattr_plan_decode(const uint8_t *p, size_t len, struct xattr_plan *out);
