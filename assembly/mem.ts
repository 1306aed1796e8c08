// Growable byte buffers for the stub runtime. A buffer's base moves when it grows (the stub copies
// a block that is not the last one), so callers keep offsets into a buffer, never raw addresses
// across a grow.

@unmanaged
export class Buf {
  base: usize;
  used: u32;
  cap: u32;
}

export function newBuf(cap: u32): Buf {
  const b = changetype<Buf>(heap.alloc(offsetof<Buf>()));
  b.base = heap.alloc(<usize>cap);
  b.used = 0;
  b.cap = cap;
  return b;
}

/** Makes sure `bytes` bytes fit without changing `used`. */
export function bufEnsure(b: Buf, bytes: u32): void {
  if (bytes <= b.cap) return;
  let cap = <u64>b.cap << 1;
  if (cap < <u64>bytes) cap = <u64>bytes;
  b.base = heap.realloc(b.base, <usize>cap);
  b.cap = <u32>cap;
}

/** Appends `extra` bytes of room and returns the offset where they start. */
export function bufGrow(b: Buf, extra: u32): u32 {
  const at = b.used;
  bufEnsure(b, at + extra);
  b.used = at + extra;
  return at;
}

/** Appends `extra` bytes of room and returns their ADDRESS (valid until the buffer grows again).
 *  Never write `b.base + bufGrow(b, n)`: the base is read before the grow may move it. */
export function bufAppend(b: Buf, extra: u32): usize {
  const at = bufGrow(b, extra);
  return b.base + <usize>at;
}

export function bufPushU32(b: Buf, v: u32): void {
  const at = bufGrow(b, 4);
  store<u32>(b.base + at, v);
}

// @ts-ignore: decorator
@inline export function bufU32(b: Buf, index: u32): u32 {
  return load<u32>(b.base + (<usize>index << 2));
}

/** Byte order of two strings, shorter first on a common prefix (Go's string comparison). */
export function compareBytes(a: usize, aLen: u32, b: usize, bLen: u32): i32 {
  const n = aLen < bLen ? aLen : bLen;
  const c = memory.compare(a, b, n);
  if (c != 0) return c;
  return <i32>aLen - <i32>bLen;
}
