// Node-API helpers: reading arguments, making return values. Argument types are checked in
// src/native/shim.ts before any call reaches here; a wrong type that gets through anyway (the addon
// called directly) gives one generic TypeError (throw_arg_type), never a crash.
#pragma once
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_ARGS 8
// Declares argv[0..n) (missing arguments are undefined) in a napi_callback.
#define GET_ARGS(n)                                                        \
  size_t argc = (n);                                                       \
  napi_value argv[MAX_ARGS];                                               \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL; \
  for (size_t i_ = argc; i_ < (n); i_++) napi_get_undefined(env, &argv[i_]);

// Each returns false after throwing.
bool arg_string(napi_env env, napi_value v, char **out);         // a malloc'd UTF-8 copy (free it)
bool arg_string_or_null(napi_env env, napi_value v, char **out); // null/undefined give *out = NULL
// A path: a string (its UTF-8) or a Uint8Array/Buffer (its bytes exactly: a file name is bytes and
// need not be UTF-8); *out is a malloc'd NUL-terminated copy (free it).
bool arg_path(napi_env env, napi_value v, char **out);
bool arg_i64(napi_env env, napi_value v, int64_t *out);
bool arg_i32(napi_env env, napi_value v, int32_t *out);
bool arg_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len); // a Uint8Array/Buffer's bytes
// A string (UTF-8, *owned malloc'd) or bytes.
bool arg_bytes_or_string(napi_env env, napi_value v, uint8_t **data, size_t *len, char **owned);
bool arg_function(napi_env env, napi_value v);
bool is_nullish(napi_env env, napi_value v);
bool is_string(napi_env env, napi_value v);

napi_value js_undefined(napi_env env);
napi_value js_number(napi_env env, double d);
void set_num_prop(napi_env env, napi_value obj, const char *key, double d);
