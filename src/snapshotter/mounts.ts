// The mounts a snapshot hands containerd, shaped as containerd's own overlayfs snapshotter shapes them
// (snapshots/overlay/overlay.go, mounts()): containerd mounts them itself; the snapshotter never does.
// - no parent: a bind of the snapshot's own upper dir, rw (ro for a view);
// - a view of a one-layer parent: a read-only bind of that layer's upper dir (overlay needs two lowers
//   for a mount without an upper);
// - otherwise overlay: lowerdir= the store's absolute short links (l/…, topmost first), and for an
//   active snapshot upperdir=/workdir=.
// One difference on purpose: the options start with the store's own leading options (index=off,
// userxattr, and redirect_dir=off / metacopy=off where the kernel has them, src/mount/data.ts), the
// ones this driver mounts with: then the kernel never writes redirects or metacopy files into an
// upper dir, and this project's native diff of a container's snapshot can trust the upper dir alone.
import { baseOptions, type BaseOptionChoices } from '../mount/data.js';
import type { SnapshotKind } from './snapshot-record.js';

/** containerd.types.Mount */
export interface Mount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

export interface LayerSources {
  diff: string;
  work: string;
  /** absolute HOME/l/<link> of each lower, topmost first */
  lowerLinks: string[];
  /** the diff dir the topmost link points at (null: no lowers) */
  topLowerDir: string | null;
}

export function snapshotMounts(kind: SnapshotKind, layer: LayerSources, features: BaseOptionChoices): Mount[] {
  if (layer.lowerLinks.length === 0) {
    return [{ type: 'bind', source: layer.diff, options: [kind === 'view' ? 'ro' : 'rw', 'rbind'] }];
  }
  const options = baseOptions(features);
  if (kind === 'active') {
    options.push(`workdir=${layer.work}`, `upperdir=${layer.diff}`);
  } else if (layer.lowerLinks.length === 1) {
    return [{ type: 'bind', source: layer.topLowerDir!, options: ['ro', 'rbind'] }];
  }
  options.push(`lowerdir=${layer.lowerLinks.join(':')}`);
  return [{ type: 'overlay', source: 'overlay', options }];
}
