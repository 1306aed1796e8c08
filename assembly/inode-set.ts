// Open-addressing hash set of (dev, ino), for counting a hardlinked inode once. Each accumulator
// (size.ts, usage.ts) owns a set of its own, so feeding one never changes what the other counts.
// Slot: ino u64 at 0, dev u32 at 8, used u32 at 12 (ino 0 is valid on some filesystems, so the
// used word marks a slot, not the key).

const SLOT: u32 = 16;
const INITIAL_CAPACITY: u32 = 1024;

@unmanaged
export class InodeSet {
  slots: usize;
  capacity: u32; // a power of two
  filled: u32;
}

/** An empty set on the core's heap (gone with the next coreReset). */
export function newInodeSet(): InodeSet {
  const set = changetype<InodeSet>(heap.alloc(offsetof<InodeSet>()));
  set.capacity = INITIAL_CAPACITY;
  set.slots = heap.alloc(<usize>INITIAL_CAPACITY * SLOT);
  memory.fill(set.slots, 0, <usize>INITIAL_CAPACITY * SLOT);
  set.filled = 0;
  return set;
}

// @ts-ignore: decorator
@inline function hashOf(dev: u32, ino: u64): u64 {
  let h = ino ^ (<u64>dev * 0x9E3779B97F4A7C15);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccd;
  h ^= h >> 33;
  return h;
}

function insertNoGrow(table: usize, cap: u32, dev: u32, ino: u64): bool {
  const mask = cap - 1;
  let i = <u32>hashOf(dev, ino) & mask;
  while (true) {
    const s = table + <usize>i * SLOT;
    if (load<u32>(s, 12) == 0) {
      store<u64>(s, ino, 0);
      store<u32>(s, dev, 8);
      store<u32>(s, 1, 12);
      return true;
    }
    if (load<u64>(s, 0) == ino && load<u32>(s, 8) == dev) return false;
    i = (i + 1) & mask;
  }
}

/** Adds (dev, ino) to `set`; true when it was not there yet. */
export function inodeSetAdd(set: InodeSet, dev: u32, ino: u64): bool {
  if ((set.filled + 1) << 1 > set.capacity) {
    const oldSlots = set.slots;
    const oldCap = set.capacity;
    const cap = oldCap << 1;
    const slots = heap.alloc(<usize>cap * SLOT);
    memory.fill(slots, 0, <usize>cap * SLOT);
    for (let i: u32 = 0; i < oldCap; i++) {
      const s = oldSlots + <usize>i * SLOT;
      if (load<u32>(s, 12) != 0) insertNoGrow(slots, cap, load<u32>(s, 8), load<u64>(s, 0));
    }
    heap.free(oldSlots);
    set.slots = slots;
    set.capacity = cap;
  }
  const added = insertNoGrow(set.slots, set.capacity, dev, ino);
  if (added) set.filled++;
  return added;
}

export function inodeSetCount(set: InodeSet): u32 {
  return set.filled;
}
