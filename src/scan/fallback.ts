// The portable scanner, used when the C shim is not built: fast-glob lists the tree, each entry is
// lstat'ed (bigint: 64-bit inode numbers and nanosecond mtimes, which fast-glob's own `stats`
// cannot give), entries are put in the shim's order (depth-first, each directory's entries in
// byte order) and encoded as the same records into the same slots.
//
// What it cannot see, and therefore never reports:
// - extended attributes: no FLAG_OPAQUE / FLAG_REDIRECT / FLAG_METACOPY / FLAG_CAPS (Node has no
//   xattr API), so capability-only changes are invisible to a naive diff that uses it;
// - names that are not valid UTF-8 (Node decodes them lossily; the lstat of the decoded name fails
//   and the entry is skipped);
// - it lists the whole tree before the first batch (memory grows with the tree, not with a batch).
import { lstatSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import fg from 'fast-glob';
import { AT_FDCWD } from '../native/constants.js';
import type { Core } from '../core/wasm.js';
import type { ScanStreamSlots } from '../core/regions.js';
import { RECORD_SIZE, SCAN_NO_RECURSE, SCAN_SIZE_ALLOCATED, encodeRecord, kernelDev } from '../core/records.js';
import type { BatchConsumer } from './batches.js';

interface Listed {
  parts: Buffer[]; // path components, as bytes
  rel: string;
}

function compareComponents(a: Listed, b: Listed): number {
  const n = Math.min(a.parts.length, b.parts.length);
  for (let i = 0; i < n; i++) {
    const c = Buffer.compare(a.parts[i]!, b.parts[i]!);
    if (c !== 0) return c;
  }
  return a.parts.length - b.parts.length;
}

export async function fallbackScan(core: Core, slots: ScanStreamSlots, dirfd: number, path: string,
                                   flags: number, consume: BatchConsumer): Promise<number> {
  const root = dirfd === AT_FDCWD ? path : join(`/proc/self/fd/${dirfd}`, path);
  lstatSync(root); // a missing root is an error, as with the shim (ENOENT)
  const found = await fg('**', {
    cwd: root,
    onlyFiles: false,
    dot: true,
    followSymbolicLinks: false,
    deep: (flags & SCAN_NO_RECURSE) !== 0 ? 1 : Infinity,
    unique: true,
    suppressErrors: true,
  });
  const listed: Listed[] = found.map((rel) => ({ rel, parts: rel.split('/').map((p) => Buffer.from(p)) }));
  listed.sort(compareComponents);

  const allocated = (flags & SCAN_SIZE_ALLOCATED) !== 0;
  let slotIndex = 0;
  let count = 0;
  let heapUsed = 0;
  let total = 0;
  const flush = (): void => {
    if (count === 0) return;
    consume(slots[slotIndex]!, count, heapUsed);
    total += count;
    count = 0;
    heapUsed = 0;
    slotIndex ^= 1;
  };
  for (const entry of listed) {
    let st: BigIntStats | undefined;
    try {
      st = lstatSync(join(root, entry.rel), { bigint: true });
    } catch {
      continue; // vanished, or a name Node could not decode
    }
    const name = entry.parts[entry.parts.length - 1]!;
    const slot = slots[slotIndex]!;
    if (count === slot.recordsSize / RECORD_SIZE || heapUsed + name.length > slot.heapSize) flush();
    const target = slots[slotIndex]!;
    core.low.set(name, target.heapAddr + heapUsed);
    encodeRecord(core.low, target.recordsAddr + count * RECORD_SIZE, {
      ino: st.ino,
      size: allocated ? st.blocks * 512n : st.size,
      mtimeSec: st.mtimeNs / 1_000_000_000n - (st.mtimeNs < 0n && st.mtimeNs % 1_000_000_000n !== 0n ? 1n : 0n),
      mtimeNsec: Number(((st.mtimeNs % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n),
      mode: Number(st.mode),
      uid: Number(st.uid),
      gid: Number(st.gid),
      nlink: Number(st.nlink),
      dev: kernelDev(st.dev),
      rdev: kernelDev(st.rdev),
      nameOff: heapUsed,
      nameLen: name.length,
      extraLen: 0,
      depth: entry.parts.length,
      flags: 0,
    });
    heapUsed += name.length;
    count++;
  }
  flush();
  return total;
}
