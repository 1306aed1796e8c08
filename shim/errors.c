// Node-style errors from libuv's uv_err_name_r/uv_strerror_r (Node's own symbols, there in every
// process that loads an addon): the same code and text Node's fs gives for the same errno.
#include "errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static void set_str(napi_env env, napi_value obj, const char *key, const char *val) {
  napi_value v;
  if (napi_create_string_utf8(env, val, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, obj, key, v);
}

napi_value errno_error(napi_env env, int err, const char *syscall_name, const char *path, const char *dest) {
  char code[64], desc[128];
  uv_err_name_r(-err, code, sizeof code); // libuv's error numbers are the negated errnos on Unix
  uv_strerror_r(-err, desc, sizeof desc);
  size_t len = strlen(code) + strlen(desc) + strlen(syscall_name) + (path ? strlen(path) : 0) +
               (dest ? strlen(dest) : 0) + 32;
  char *msg = malloc(len);
  napi_value msgv, codev, errv, num;
  if (!msg) {
    napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &msgv);
  } else {
    int n = snprintf(msg, len, "%s: %s, %s", code, desc, syscall_name);
    if (path) n += snprintf(msg + n, len - n, " '%s'", path);
    if (dest) snprintf(msg + n, len - n, " -> '%s'", dest);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msgv);
    free(msg);
  }
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &codev);
  napi_create_error(env, codev, msgv, &errv);
  napi_create_int32(env, -err, &num);
  napi_set_named_property(env, errv, "errno", num);
  set_str(env, errv, "syscall", syscall_name);
  if (path) set_str(env, errv, "path", path);
  if (dest) set_str(env, errv, "dest", dest);
  return errv;
}

void throw_errno(napi_env env, int err, const char *syscall_name, const char *path, const char *dest) {
  napi_throw(env, errno_error(env, err, syscall_name, path, dest));
}

void throw_arg_type(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "overlay2 shim: an argument has the wrong type");
}

void failure_clear(struct failure *f) { free(f->path); memset(f, 0, sizeof *f); }

napi_value failure_error(napi_env env, struct failure *f) {
  napi_value e = errno_error(env, f->err, f->syscall, f->path, NULL);
  failure_clear(f);
  return e;
}
