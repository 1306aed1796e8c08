// The scanner's xattr plan in the bytes the shim decodes (shim/xattr_plan.h), and the plan for the
// SCAN_* xattr flags of src/core/records.ts. Built once per flags value: scanOpen and lookupBatch pass
// it per scan / per batch, never per entry.
import {
  FLAG_CAPS, FLAG_METACOPY, FLAG_OPAQUE, FLAG_REDIRECT,
  SCAN_CAPS, SCAN_METACOPY, SCAN_OPAQUE, SCAN_REDIRECT, SCAN_USER_XATTR, SCAN_XATTRS_DIRS_ONLY,
} from '../core/records.js';
import { upperXattrPlan, type XattrKindPlan, type XattrPlan } from '../overlay-format.js';

/** The scan flags the shim's walk itself reads; the others become the xattr plan. */
export const WALK_FLAGS_MASK = ~(SCAN_OPAQUE | SCAN_USER_XATTR | SCAN_CAPS | SCAN_REDIRECT | SCAN_METACOPY | SCAN_XATTRS_DIRS_ONLY);

const MAX_TESTS = 4; // PLAN_MAX_TESTS

function encodeKind(k: XattrKindPlan, out: number[]): void {
  if (k.flags.length > MAX_TESTS) throw new RangeError(`overlay2: an xattr plan tests at most ${MAX_TESTS} names per kind`);
  const bytes = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    if (b.length > 255) throw new RangeError(`overlay2: xattr plan string too long: ${s}`);
    return b;
  };
  const name = (s: string) => {
    const b = bytes(s);
    if (b.length === 0 || b.includes(0)) throw new RangeError(`overlay2: bad xattr name in a plan: ${JSON.stringify(s)}`);
    out.push(b.length, ...b);
  };
  out.push(k.flags.length);
  for (const f of k.flags) {
    out.push(f.bit & 0xff, (f.bit >> 8) & 0xff);
    name(f.name);
    if (f.equals === undefined) out.push(0);
    else { const v = bytes(f.equals); out.push(1, v.length, ...v); }
  }
  if (!k.extra) { out.push(0); return; }
  out.push(1, k.extra.bit & 0xff, (k.extra.bit >> 8) & 0xff);
  name(k.extra.name);
}

/** A plan as the shim reads it; null when it reads nothing. */
export function encodeXattrPlan(plan: XattrPlan): Uint8Array | null {
  const kinds = [plan.dir, plan.reg, plan.other];
  if (kinds.every((k) => k.flags.length === 0 && !k.extra)) return null;
  const out: number[] = [];
  for (const k of kinds) encodeKind(k, out);
  return Uint8Array.from(out);
}

const byFlags = new Map<number, Uint8Array | null>();

/** The encoded plan for the xattr bits of a SCAN_* flags value (cached: there are few values). */
export function planForScanFlags(scanFlags: number): Uint8Array | null {
  const flags = scanFlags & ~WALK_FLAGS_MASK;
  let plan = byFlags.get(flags);
  if (plan === undefined) {
    const full = upperXattrPlan({
      userxattr: (flags & SCAN_USER_XATTR) !== 0,
      opaque: (flags & SCAN_OPAQUE) !== 0,
      redirect: (flags & SCAN_REDIRECT) !== 0,
      metacopy: (flags & SCAN_METACOPY) !== 0,
      caps: (flags & SCAN_CAPS) !== 0,
      bits: { opaque: FLAG_OPAQUE, redirect: FLAG_REDIRECT, metacopy: FLAG_METACOPY, caps: FLAG_CAPS },
    });
    plan = encodeXattrPlan((flags & SCAN_XATTRS_DIRS_ONLY) === 0 ? full : { dir: full.dir, reg: { flags: [] }, other: { flags: [] } });
    byFlags.set(flags, plan);
  }
  return plan;
}
