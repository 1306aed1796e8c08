// The values the diff engine hands back to callers.

export type ChangeKind = 'A' | 'C' | 'D';

/** One path of a layer that differs from its parent, as `docker diff` prints it. */
export interface Change {
  path: string;     // absolute inside the layer, "/etc/passwd"
  kind: ChangeKind; // A added, C changed, D deleted
}

/** Byte order of paths, the order every change list is returned in. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
