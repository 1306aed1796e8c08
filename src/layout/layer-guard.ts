// The checks remove() and create() make under the home's refs lock (SharedRefs.locked), so that they
// hold for every process using the home until the layer has moved:
// - remove(): no layer is built on it (ERR_LAYER_HAS_CHILDREN) and no other live process holds its
//   mount (ERR_LAYER_BUSY), checked in the same step as the move out of sight — a child created, or
//   a mount taken, by another process in between would otherwise be stranded;
// - create(): the parent is still there, with the link the new layer's lower file names, in the same
//   step as the rename into place — else a remove() of the parent between the two strands the child.
// Synchronous on purpose: the lock is a blocking flock, never held across an await.
import { existsSync } from 'node:fs';
import { Overlay2Error } from '../errors.js';
import { otherHolders, type RefState } from '../mount/shared-refs.js';
import { LINK_DIR, type LayerStore } from './store.js';

/**
 * remove()'s refusals, unless `force`: ERR_LAYER_NOT_FOUND when another process removed it first,
 * ERR_LAYER_HAS_CHILDREN, ERR_LAYER_BUSY naming the other holders. `state`: the layer's references
 * (dead holders pruned); `childrenOf`: the layers whose lower file names a link (the child index,
 * src/layout/child-index.ts); `otherChildren`: layers built on it that do not name its link (a thin
 * layer's, src/thin/). Returns the layer's link id ('' when it has none).
 */
export function checkRemovable(store: LayerStore, id: string, state: RefState, force: boolean,
  childrenOf: (linkId: string) => string[], otherChildren: () => string[] = () => []): string {
  const linkId = store.readLinkIdSync(id) ?? (existsSync(store.dir(id)) ? '' : null);
  if (linkId === null) {
    throw new Overlay2Error('ERR_LAYER_NOT_FOUND', `overlay2: layer ${id} does not exist in ${store.home}`, { id });
  }
  if (force) return linkId;
  const children = linkId === '' ? [] : childrenOf(linkId);
  for (const child of otherChildren()) if (!children.includes(child)) children.push(child);
  if (children.length > 0) {
    throw new Overlay2Error('ERR_LAYER_HAS_CHILDREN',
      `overlay2: layer ${id} has ${children.length} child layer${children.length > 1 ? 's' : ''} (${children.slice(0, 3).join(', ')}${children.length > 3 ? ', ...' : ''}); remove them first, or force it (--force, { force: true })`, { id });
  }
  const holders = otherHolders(state);
  if (holders !== '') {
    throw new Overlay2Error('ERR_LAYER_BUSY',
      `overlay2: layer ${id} is mounted by ${holders}; put() or unmount it there first, or force it (--force, { force: true })`, { id });
  }
  return linkId;
}

/** create()'s last check before the rename into place: the parent is there, with the link its
 *  child's lower file names first (`parentEntry`, "l/<link id>"; null for a thin parent, whose
 *  children list its trees instead, src/thin/). */
export function requireParentSync(store: LayerStore, parent: string, parentEntry: string | null, child: string): void {
  const linkId = store.readLinkIdSync(parent);
  if (linkId === null || (parentEntry !== null && `${LINK_DIR}/${linkId}` !== parentEntry)) {
    throw new Overlay2Error('ERR_LAYER_NOT_FOUND',
      `overlay2: parent layer ${parent} of ${child} was removed while ${child} was being created`, { id: child });
  }
}
