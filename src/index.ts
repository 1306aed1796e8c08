// The public API of the overlay2 package: `import { Overlay2Driver } from 'overlay2'`.
export {
  Overlay2Driver, LEGACY_MAX_DEPTH, KERNEL_MAX_DEPTH, mountPoints,
  type CreateOpts, type DiffOptions, type InitOptions, type RemoveOptions, type LayerInfo,
} from './driver.js';
export { Overlay2Error, type Overlay2ErrorCode, type Overlay2ErrorDetails } from './errors.js';
export type { Change, ChangeKind } from './changes/change.js';
export type { ChangeStream } from './changes/change-stream.js';
export type { Features } from './features.js';
export type { DriverOptions } from './options.js';
export type { IdMap, IdMapOptions } from './idmap.js';
export type { MountMethod, MountStrategy } from './mount/mounter.js';
export type { RefScope } from './mount/shared-refs.js';
export { isMountReferenced } from './mount/shared-refs.js';
export { changesBetween, type ChangesBetweenOptions } from './changes/between.js';
export type { Progress, Control } from './progress.js';
export type { LayerSource } from './apply/input.js';
export type { ImageSource, LoadOptions, LoadResult } from './image/load.js';
export type { SaveOptions, SaveResult } from './image/save.js';
export * from './plugin/index.js';
export { serveSnapshotter, DEFAULT_SNAPSHOTTER_SOCKET, type SnapshotterOptions, type SnapshotterHandle, type LogLevel } from './snapshotter/server.js';
export { Snapshotter, SnapshotError, type SnapshotErrorCode, type SnapshotInfo } from './snapshotter/snapshotter.js';
export type { Mount } from './snapshotter/mounts.js';
export type { SnapshotKind, SnapshotUsage } from './snapshotter/snapshot-record.js';
export { makeThinImage, commitThinLayer, type PublishOptions, type PublishResult } from './thin/publish.js';
export { parseManifest, serializeManifest, type ThinManifest, type ThinLayerRef } from './thin/manifest.js';
export type { ThinOptions, ThinMountMethod } from './thin/options.js';
