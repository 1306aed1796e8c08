// Node-API helpers (see napi_args.h).
#include "napi_args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

bool is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_null || t == napi_undefined);
}

bool is_string(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && t == napi_string;
}

bool arg_string(napi_env env, napi_value v, char **out) {
  *out = NULL;
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) { throw_arg_type(env); return false; }
  char *s = malloc(len + 1);
  if (!s) { throw_errno(env, ENOMEM, "malloc", NULL, NULL); return false; }
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  *out = s;
  return true;
}

bool arg_path(napi_env env, napi_value v, char **out) {
  if (is_string(env, v)) return arg_string(env, v, out);
  *out = NULL;
  uint8_t *data;
  size_t len;
  if (!arg_bytes(env, v, &data, &len)) return false;
  char *s = malloc(len + 1);
  if (!s) { throw_errno(env, ENOMEM, "malloc", NULL, NULL); return false; }
  if (len > 0) memcpy(s, data, len);
  s[len] = 0;
  *out = s;
  return true;
}

bool arg_string_or_null(napi_env env, napi_value v, char **out) {
  *out = NULL;
  return is_nullish(env, v) || arg_string(env, v, out);
}

bool arg_i64(napi_env env, napi_value v, int64_t *out) {
  if (napi_get_value_int64(env, v, out) != napi_ok) { throw_arg_type(env); return false; }
  return true;
}

bool arg_i32(napi_env env, napi_value v, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) { throw_arg_type(env); return false; }
  return true;
}

bool arg_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is_ta = false;
  napi_typedarray_type type;
  void *p = NULL;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_uint8_array ||
      (*len > 0 && !p)) {
    throw_arg_type(env);
    return false;
  }
  *data = p;
  return true;
}

bool arg_bytes_or_string(napi_env env, napi_value v, uint8_t **data, size_t *len, char **owned) {
  *owned = NULL;
  if (!is_string(env, v)) return arg_bytes(env, v, data, len);
  if (!arg_string(env, v, owned)) return false;
  *data = (uint8_t *)*owned;
  napi_get_value_string_utf8(env, v, NULL, 0, len);
  return true;
}

bool arg_function(napi_env env, napi_value v) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_function) { throw_arg_type(env); return false; }
  return true;
}

napi_value js_undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

napi_value js_number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

void set_num_prop(napi_env env, napi_value obj, const char *key, double d) {
  napi_set_named_property(env, obj, key, js_number(env, d));
}
