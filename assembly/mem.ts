// Growable byte buffers for the stub runtime, and the blocks they live in. The stub allocator only
// bumps (heap.free gives back the last block only, heap.realloc copies any other block and keeps the
// old one), so a buffer that grew left its old copies behind: ~2× its live bytes, and a walk that
// makes and drops buffers per directory would grow with the number of directories. So buffers take
// power-of-two blocks from free lists of their own (one list per size), and a grown or freed
// buffer's block goes back on its list: memory is the most that was live at once, rounded up to
// powers of two. A buffer's base moves when it grows, so callers keep offsets into a buffer, never
// raw addresses across a grow.

const CLASSES: u32 = 32;           // block sizes 2^0 .. 2^31
const MIN_CLASS: u32 = 4;          // 16 bytes: room for the free list's link, and a Buf header
let freeLists: usize = 0;          // CLASSES heads, each the first free block of its size (0: none)

/** Forgets every free list: call right after heap.reset(), before anything allocates. */
export function memReset(): void {
  freeLists = heap.alloc(<usize>CLASSES * sizeof<usize>());
  memory.fill(freeLists, 0, <usize>CLASSES * sizeof<usize>());
}

// @ts-ignore: decorator
@inline function classOf(bytes: u32): u32 {
  if (bytes <= (1 << MIN_CLASS)) return MIN_CLASS;
  return 32 - clz<u32>(bytes - 1);
}

/** A block of at least `bytes` (its size is 1 << classOf(bytes)): a freed one of that size, else new. */
export function blockAlloc(bytes: u32): usize {
  const head = freeLists + <usize>classOf(bytes) * sizeof<usize>();
  const p = load<usize>(head);
  if (p != 0) {
    store<usize>(head, load<usize>(p));
    return p;
  }
  return heap.alloc(<usize>1 << <usize>classOf(bytes));
}

/** Gives back a block blockAlloc(bytes) returned (the same `bytes`, or any with the same class). */
export function blockFree(p: usize, bytes: u32): void {
  const head = freeLists + <usize>classOf(bytes) * sizeof<usize>();
  store<usize>(p, load<usize>(head));
  store<usize>(head, p);
}

@unmanaged
export class Buf {
  base: usize;
  used: u32;
  cap: u32;
}

export function newBuf(cap: u32): Buf {
  const b = changetype<Buf>(blockAlloc(offsetof<Buf>()));
  const rounded: u32 = 1 << classOf(cap);
  b.base = blockAlloc(rounded);
  b.used = 0;
  b.cap = rounded;
  return b;
}

/** Gives a buffer (header and block) back to the free lists; `b` must not be used after. */
export function freeBuf(b: Buf): void {
  blockFree(b.base, b.cap);
  blockFree(changetype<usize>(b), offsetof<Buf>());
}

/** Makes sure `bytes` bytes fit without changing `used`. */
export function bufEnsure(b: Buf, bytes: u32): void {
  if (bytes <= b.cap) return;
  let cap = <u64>b.cap << 1;
  if (cap < <u64>bytes) cap = <u64>bytes;
  const rounded: u32 = 1 << classOf(<u32>cap);
  const base = blockAlloc(rounded);
  // the whole old block, not just `used`: some callers size a buffer with bufEnsure and index it
  // without `used` (the native walk's vis lists)
  memory.copy(base, b.base, b.cap);
  blockFree(b.base, b.cap);
  b.base = base;
  b.cap = rounded;
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
