// The labels containerd's unpacker and CRI put on a layer's Prepare, read for the remote-snapshot
// handshake (snapshotter.ts tryRemote): the target snapshot name and the layer's digests.
import type { LayerKeys } from '../remote/remote-trees.js';

/** The committed name containerd wants the layer under (its chainID). */
export const LABEL_SNAPSHOT_REF = 'containerd.io/snapshot.ref';
/** The compressed blob's digest, set by CRI (disable_snapshot_annotations = false). */
export const LABEL_LAYER_DIGEST = 'containerd.io/snapshot/cri.layer-digest';
/** The uncompressed layer's digest (containerd ≥ 2.3). */
export const LABEL_DIFF_ID = 'containerd.io/snapshot/diff-id';

const SHA256 = /^sha256:[0-9a-f]{64}$/;

/** What to look a remote tree up by; null when the Prepare is no remote candidate (no target, no
 *  digest); `refused` when a label is not a digest (never turned into a path). */
export function remoteLayerKeys(labels: Record<string, string>):
  null | { refused: string } | { target: string; digest: string; keys: LayerKeys } {
  const target = labels[LABEL_SNAPSHOT_REF];
  const blob = labels[LABEL_LAYER_DIGEST];
  const diff = labels[LABEL_DIFF_ID];
  if (target === undefined || target === '' || (blob === undefined && diff === undefined)) return null;
  for (const [name, value] of [[LABEL_SNAPSHOT_REF, target], [LABEL_LAYER_DIGEST, blob], [LABEL_DIFF_ID, diff]] as const) {
    if (value !== undefined && !SHA256.test(value)) return { refused: `${name} ${JSON.stringify(value.slice(0, 80))} is not sha256:<64 hex>` };
  }
  const keys: LayerKeys = {};
  if (blob !== undefined) keys.blobDigest = blob;
  if (diff !== undefined) keys.diffId = diff;
  return { target, digest: blob ?? diff!, keys };
}
