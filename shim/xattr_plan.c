// Decoding the scanner's xattr plan (layout: xattr_plan.h).
#include "xattr_plan.h"

#include <string.h>

struct reader { const uint8_t *p; size_t len, pos; bool bad; };

static uint8_t u8(struct reader *r) {
  if (r->pos + 1 > r->len) { r->bad = true; return 0; }
  return r->p[r->pos++];
}

static uint16_t u16(struct reader *r) {
  uint16_t lo = u8(r);
  return (uint16_t)(lo | (uint16_t)u8(r) << 8);
}

// A name: u8 length, then the bytes, NUL-terminated into out (256 bytes); empty names are refused.
static void name(struct reader *r, char *out) {
  size_t n = u8(r);
  if (n == 0 || r->pos + n > r->len) { r->bad = true; return; }
  memcpy(out, r->p + r->pos, n);
  out[n] = 0;
  if (strlen(out) != n) r->bad = true; // a NUL inside
  r->pos += n;
}

bool xattr_plan_decode(const uint8_t *p, size_t len, struct xattr_plan *out) {
  memset(out, 0, sizeof *out);
  if (len == 0) return true;
  struct reader r = {p, len, 0, false};
  for (int k = 0; k < PLAN_KINDS && !r.bad; k++) {
    struct xattr_kind_plan *kp = &out->kinds[k];
    kp->ntests = u8(&r);
    if (kp->ntests > PLAN_MAX_TESTS) return false;
    for (int i = 0; i < kp->ntests && !r.bad; i++) {
      struct xattr_test *t = &kp->tests[i];
      t->bit = u16(&r);
      name(&r, t->name);
      t->has_value = u8(&r) != 0;
      if (t->has_value) {
        t->value_len = u8(&r);
        if (r.pos + t->value_len > r.len) return false;
        memcpy(t->value, r.p + r.pos, t->value_len);
        r.pos += t->value_len;
      }
    }
    kp->has_extra = u8(&r) != 0;
    if (kp->has_extra) {
      kp->extra_bit = u16(&r);
      name(&r, kp->extra_name);
    }
    if (kp->ntests || kp->has_extra) out->any = true;
  }
  return !r.bad && r.pos == r.len;
}
