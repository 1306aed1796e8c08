// Open-addressing hash set of (dev, ino), for counting a hardlinked inode once.
// Slot: ino u64 at 0, dev u32 at 8, used u32 at 12 (ino 0 is valid on some filesystems, so the
// used word marks a slot, not the key).

const SLOT: u32 = 16;

let slots: usize = 0;
let capacity: u32 = 0; // a power of two
let filled: u32 = 0;

export function inodeSetReset(): void {
  capacity = 1024;
  slots = heap.alloc(<usize>capacity * SLOT);
  memory.fill(slots, 0, <usize>capacity * SLOT);
  filled = 0;
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

/** Adds (dev, ino); true when it was not there yet. */
export function inodeSetAdd(dev: u32, ino: u64): bool {
  if ((filled + 1) << 1 > capacity) {
    const oldSlots = slots;
    const oldCap = capacity;
    capacity = oldCap << 1;
    slots = heap.alloc(<usize>capacity * SLOT);
    memory.fill(slots, 0, <usize>capacity * SLOT);
    for (let i: u32 = 0; i < oldCap; i++) {
      const s = oldSlots + <usize>i * SLOT;
      if (load<u32>(s, 12) != 0) insertNoGrow(slots, capacity, load<u32>(s, 8), load<u64>(s, 0));
    }
    heap.free(oldSlots);
  }
  const added = insertNoGrow(slots, capacity, dev, ino);
  if (added) filled++;
  return added;
}

export function inodeSetCount(): u32 {
  return filled;
}
