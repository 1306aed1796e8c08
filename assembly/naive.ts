// The naive comparison of two whole trees, rule for rule moby's FileInfo.addChanges over the trees
// its walker (collectFileInfoForChanges, changes_linux.go) collects:
// - a new entry with no old counterpart is A, and so is everything below it;
// - an entry in both is C when statDifferent or the capability bytes differ;
// - old children are only looked at when the NEW entry is dir-like; those left over are D (one D,
//   nothing below it);
// - a dir-like new entry, not the root and not already A/C, with any change below it gets a C;
// - the walker drops a name from both trees when both parents are on the same device and the two
//   entries have the same inode number (a shared inode is "unchanged"), so we skip it too.
import { Tree, ROOT, NONE, STATE_ADDED, nodeAddr, firstChild, nextSibling, nodeNameAddr, nodeNameLen,
  nodeExtraAddr, setNodeState, nodeState, nodeMode } from './tree';
import { compareBytes } from './mem';
import { recCapsLen, recDev, recIno, statDifferent, capsEqual, isDirLike } from './record';
import { emitNode, changeCount, KIND_A, KIND_C, KIND_D } from './changes';

let newTree: Tree = changetype<Tree>(0);
let oldTree: Tree = changetype<Tree>(0);
let rootsOnSameDevice = false;

function capsDiffer(o: i32, n: i32): bool {
  return !capsEqual(nodeExtraAddr(oldTree, o), recCapsLen(nodeAddr(oldTree, o)),
                    nodeExtraAddr(newTree, n), recCapsLen(nodeAddr(newTree, n)));
}

function addChanges(n: i32, o: i32): void {
  const atEntry = changeCount();
  if (o == NONE) {
    emitNode(KIND_A, newTree, n);
    setNodeState(newTree, n, nodeState(newTree, n) | STATE_ADDED);
  }
  const newDirLike = n == ROOT || isDirLike(nodeMode(newTree, n));
  const withOld = o != NONE && newDirLike;
  const sameDevice = withOld && (n == ROOT ? rootsOnSameDevice : recDev(nodeAddr(newTree, n)) == recDev(nodeAddr(oldTree, o)));

  let nc = firstChild(newTree, n);
  let oc = withOld ? firstChild(oldTree, o) : NONE;
  while (nc != NONE || oc != NONE) {
    let cmp: i32;
    if (nc == NONE) cmp = 1;
    else if (oc == NONE) cmp = -1;
    else cmp = compareBytes(nodeNameAddr(newTree, nc), nodeNameLen(newTree, nc), nodeNameAddr(oldTree, oc), nodeNameLen(oldTree, oc));
    if (cmp < 0) {
      addChanges(nc, NONE);
      nc = nextSibling(newTree, n, nc);
    } else if (cmp > 0) {
      emitNode(KIND_D, oldTree, oc);
      oc = nextSibling(oldTree, o, oc);
    } else {
      if (!(sameDevice && recIno(nodeAddr(newTree, nc)) == recIno(nodeAddr(oldTree, oc)))) {
        if (statDifferent(nodeAddr(oldTree, oc), nodeAddr(newTree, nc)) || capsDiffer(oc, nc)) {
          emitNode(KIND_C, newTree, nc);
          setNodeState(newTree, nc, nodeState(newTree, nc) | STATE_ADDED);
        }
        addChanges(nc, oc);
      }
      nc = nextSibling(newTree, n, nc);
      oc = nextSibling(oldTree, o, oc);
    }
  }
  if (changeCount() > atEntry && newDirLike && n != ROOT && (nodeState(newTree, n) & STATE_ADDED) == 0) {
    emitNode(KIND_C, newTree, n);
  }
}

/** Compares tree `newT` against tree `oldT` (both finished) into the change list. */
export function naiveCompare(newT: Tree, oldT: Tree, sameDevice: bool): void {
  newTree = newT;
  oldTree = oldT;
  rootsOnSameDevice = sameDevice;
  addChanges(ROOT, ROOT);
}
