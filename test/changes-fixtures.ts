// Real overlay stacks for the change-list tests: layers are made the way a container makes them —
// mount an upper over the layers below, change things THROUGH the merged dir (so the kernel makes
// the whiteouts, opaque dirs and copy-ups), unmount. Then native (upper + lowers) is compared with
// the naive oracle over read-only views of the layer and of its parent.
import { mkdirSync, rmSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { loadShim } from '../src/native/shim.js';
import {
  AT_FDCWD, FSCONFIG_CMD_CREATE, FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING, FSMOUNT_CLOEXEC, FSOPEN_CLOEXEC,
  MNT_DETACH, MOVE_MOUNT_F_EMPTY_PATH,
} from '../src/native/constants.js';
import { changesNative, changesNativeStream } from '../src/changes/native.js';
import * as assert from 'uvu/assert';
import { changesNaive } from '../src/changes/naive.js';
import type { Change } from '../src/changes/change.js';

const shim = loadShim();

export interface MountSpec {
  lowers: string[]; // top first
  upper?: string;
  work?: string;
  options?: string[]; // e.g. ['userxattr']
}

/** Mounts overlay at `target`: legacy mount data when it fits a page, else fsopen + lowerdir+. */
export function mountOverlay(target: string, spec: MountSpec): void {
  const extra = spec.options ?? [];
  // the kernel refuses userxattr with redirect_dir=off ("conflicting options"); nofollow creates none either
  const redirect = extra.includes('userxattr') ? 'redirect_dir=nofollow' : 'redirect_dir=off';
  const opts = ['index=off', redirect, 'metacopy=off', ...extra];
  const data = [`lowerdir=${spec.lowers.join(':')}`, ...(spec.upper ? [`upperdir=${spec.upper}`, `workdir=${spec.work}`] : []), ...opts].join(',');
  if (data.length < 3500) {
    shim.mount('overlay', target, 'overlay', 0, data);
    return;
  }
  const fsfd = shim.fsopen('overlay', FSOPEN_CLOEXEC);
  let mfd = -1;
  try {
    for (const o of opts) {
      const eq = o.indexOf('=');
      if (eq < 0) shim.fsconfig(fsfd, FSCONFIG_SET_FLAG, o, null, 0);
      else shim.fsconfig(fsfd, FSCONFIG_SET_STRING, o.slice(0, eq), o.slice(eq + 1), 0);
    }
    for (const l of spec.lowers) shim.fsconfig(fsfd, FSCONFIG_SET_STRING, 'lowerdir+', l, 0);
    if (spec.upper) {
      shim.fsconfig(fsfd, FSCONFIG_SET_STRING, 'upperdir', spec.upper, 0);
      shim.fsconfig(fsfd, FSCONFIG_SET_STRING, 'workdir', spec.work!, 0);
    }
    shim.fsconfig(fsfd, FSCONFIG_CMD_CREATE, null, null, 0);
    mfd = shim.fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
    shim.moveMount(mfd, '', AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
  } finally {
    if (mfd >= 0) closeSync(mfd);
    closeSync(fsfd);
  }
}

export function unmount(target: string): void {
  shim.umount2(target, MNT_DETACH);
}

export interface Comparison {
  native: Change[];
  naive: Change[];
}

/** A stack of layers under `root`, bottom first in `layers`. */
export class Stack {
  readonly layers: string[] = [];
  private readonly empty: string;
  private readonly merged: string;
  private readonly views: [string, string];
  private seq = 0;

  constructor(readonly root: string, readonly options: string[] = []) {
    this.empty = join(root, 'empty');
    this.merged = join(root, 'merged');
    this.views = [join(root, 'view-layer'), join(root, 'view-parent')];
    for (const d of [this.empty, this.merged, ...this.views]) mkdirSync(d, { recursive: true });
  }

  get top(): string {
    return this.layers[this.layers.length - 1]!;
  }

  /** Lower dirs of the top layer, top first (what the driver passes to changesNative). */
  get lowersOfTop(): string[] {
    return this.layers.slice(0, -1).reverse();
  }

  /** A base layer filled directly (no mount: a base layer has no whiteouts). */
  base(fill: (dir: string) => void): string {
    const dir = join(this.root, `layer${this.seq++}`);
    mkdirSync(dir);
    fill(dir);
    this.layers.push(dir);
    return dir;
  }

  /** A new layer on top: mounted read-write over the current layers, `edit` works in the merged dir. */
  async layer(edit: (merged: string) => void | Promise<void>): Promise<string> {
    const upper = join(this.root, `layer${this.seq++}`);
    const work = join(this.root, 'work');
    rmSync(work, { recursive: true, force: true });
    mkdirSync(upper);
    mkdirSync(work);
    const lowers = [...this.layers].reverse();
    mountOverlay(this.merged, { lowers: lowers.length ? lowers : [this.empty], upper, work, options: this.options });
    try {
      await edit(this.merged);
    } finally {
      unmount(this.merged);
    }
    this.layers.push(upper);
    return upper;
  }

  /** native(top upper, its lowers) and naive(view of the top layer, view of its parent). */
  async compare(): Promise<Comparison> {
    const lowers = this.lowersOfTop;
    const native = await changesNative(this.top, lowers, { userxattr: this.options.includes('userxattr') });
    // the same walk handed out a change or so per chunk: the chunks, joined, are the same list
    const streamed: Change[] = [];
    let chunks = 0;
    for await (const chunk of changesNativeStream(this.top, lowers, { userxattr: this.options.includes('userxattr'), chunkBytes: 1 })) {
      streamed.push(...chunk);
      chunks++;
    }
    assert.equal(lines(streamed), lines(native), 'changesNativeStream in one-change chunks == changesNative');
    assert.ok(native.length === 0 || chunks >= native.length / 4, `${chunks} chunks for ${native.length} changes`);
    const opts = this.options;
    // read-only views: an extra empty bottom layer, because the kernel wants two lowers without an upper
    mountOverlay(this.views[0], { lowers: [this.top, ...lowers, this.empty], options: opts });
    try {
      if (lowers.length === 0) return { native, naive: await changesNaive(this.views[0], null) };
      mountOverlay(this.views[1], { lowers: [...lowers, this.empty], options: opts });
      try {
        return { native, naive: await changesNaive(this.views[0], this.views[1]) };
      } finally {
        unmount(this.views[1]);
      }
    } finally {
      unmount(this.views[0]);
    }
  }
}

export function lines(changes: Change[]): string[] {
  return changes.map((c) => `${c.kind} ${c.path}`);
}
