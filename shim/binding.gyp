{
  "targets": [
    {
      "target_name": "overlay2_shim",
      "sources": ["overlay2_shim.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["_GNU_SOURCE", "NAPI_VERSION=8"],
      "libraries": ["-lpthread"]
    }
  ]
}
