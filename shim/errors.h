// Node-style errors, built in one place (errors.c) from libuv's names and messages, as Node's own fs
// errors are: message "ENOENT: no such file or directory, mount '/x'", properties code, errno
// (negative), syscall, path, dest.
#pragma once
#include <node_api.h>

napi_value errno_error(napi_env env, int err, const char *syscall_name, const char *path, const char *dest);
void throw_errno(napi_env env, int err, const char *syscall_name, const char *path, const char *dest);

// The one TypeError of the shim: argument types are checked in src/native/shim.ts, so this only fires
// when the addon is called around that wrapper.
void throw_arg_type(napi_env env);

// A failure on a worker thread (scan, lookup, tree removal), turned into an error on the main thread.
struct failure { int err; const char *syscall; char *path; };
void failure_clear(struct failure *f);
napi_value failure_error(napi_env env, struct failure *f); // clears f
