// The values the diff engine hands back to callers.

export type ChangeKind = 'A' | 'C' | 'D';

/** One path of a layer that differs from its parent, as `docker diff` prints it. */
export interface Change {
  /** Absolute inside the layer, "/etc/passwd", as `docker diff` shows it: a file name is bytes, and
   *  a byte that is not UTF-8 shows here as U+FFFD (Go's JSON coercion), so this is for reading. */
  path: string;
  kind: ChangeKind; // A added, C changed, D deleted
  /** The path's exact bytes, as moby's Change.Path holds them: the one to open or compare. */
  pathBytes: Buffer;
}

/** Byte order of paths, the order every change list is returned in. */
export function comparePaths(a: Change, b: Change): number {
  return Buffer.compare(a.pathBytes, b.pathBytes);
}
