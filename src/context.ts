// What the driver hands down to the rooms it delegates to (apply, export, changes): the shim it
// loaded, the probed userxattr and the id maps — one value, instead of each room loading the shim
// and reading the features on its own. Called without one (tests, benches, changesBetween), a room
// loads the process's shim itself.
import type { Shim } from './native/shim.js';
import type { IdMappings } from './idmap.js';

export interface LayerContext {
  /** The shim (src/native/shim.ts) the driver loaded. */
  shim?: Shim;
  /** The mount uses `userxattr`: overlay's xattrs are user.overlay.* instead of trusted.overlay.*. */
  userxattr: boolean;
  /** Container ids ↔ host ids (empty: the identity). */
  idMappings: IdMappings;
}
