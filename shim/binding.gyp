{
  "targets": [
    {
      "target_name": "overlay2_shim",
      "sources": [
        "module.c", "napi_args.c", "errors.c", "mount.c", "xattr.c", "fs_at.c", "dirents.c",
        "quota.c", "scanner.c", "xattr_plan.c", "remove_tree.c", "apply_batch.c"
      ],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["_GNU_SOURCE", "NAPI_VERSION=8"],
      "libraries": ["-lpthread"]
    }
  ]
}
