// Stable, typed errors: callers branch on `code`, people read `message`.

export type Overlay2ErrorCode =
  | 'ERR_NOT_SUPPORTED'       // overlay (or a needed kernel feature) is not available
  | 'ERR_INCOMPATIBLE_FS'     // the backing filesystem cannot hold overlay layers
  | 'ERR_MAX_DEPTH'           // the chain is deeper than the mount can take
  | 'ERR_LAYER_NOT_FOUND'     // no layer with that id (or parent)
  | 'ERR_LAYER_EXISTS'        // create() of an id that is already there
  | 'ERR_LAYER_BUSY'          // an operation that needs the layer unmounted (applyDiff; remove of one another process holds), or a tree changed under an import
  | 'ERR_LAYER_INCOMPLETE'    // an import through the layer's mount was interrupted after it had content
  | 'ERR_NO_SPACE'            // the filesystem (or its quota) is full: ENOSPC / EDQUOT, kept as `cause`
  | 'ERR_INVALID_ID'          // an id that cannot name a directory safely
  | 'ERR_UNSAFE_ARCHIVE'      // a tar entry that would reach outside the layer
  | 'ERR_BAD_ARCHIVE'         // a malformed, truncated or unsupported tar
  | 'ERR_BAD_OPTION'          // an unknown or malformed option
  | 'ERR_MOUNT_FAILED'        // the kernel refused the overlay mount
  | 'ERR_NOT_A_STORE'         // the home is missing (read-only open), not a directory, or a non-empty directory that is no store
  | 'ERR_LAYER_HAS_CHILDREN'  // remove() of a layer other layers are built on (without { force: true })
  | 'ERR_NEEDS_ROOT'          // the process lacks CAP_SYS_ADMIN, which overlay mounts need
  | 'ERR_DIGEST_MISMATCH'     // a loaded blob or layer is not the digest its image names
  | 'ERR_LAYER_CHANGED'       // save: a layer's files differ from the tar it was applied from
  | 'ERR_BAD_IMAGE'           // load: not an image archive/layout we can read (missing or malformed manifest, config)
  | 'ERR_INVALID_ARG_TYPE'    // an argument of the wrong type (applyDiff's input)
  | 'ERR_SOCKET_IN_USE'       // another live process serves the plugin socket
  | 'ERR_THIN_MANIFEST'       // a thin layer's manifest is not one we read (not JSON, too big, wrong types, scheme, digest)
  | 'ERR_THIN_VERSION'        // a thin manifest's min_version is newer than this reader
  | 'ERR_THIN_UNSAFE_PATH'    // a thin layer path that would leave <root>/<repo> (.., absolute, NUL, a symlink out)
  | 'ERR_THIN_ROOT_NOT_MOUNTED' // the thin root or a repository under it is not there (not mounted)
  | 'ERR_THIN_LAYER_MISSING'  // a thin layer's tree is not in its repository
  | 'ERR_REMOTE_LAYER_MISSING' // a remote layer's tree is not there (its root not mounted)
  | 'ERR_REMOTE_UNSAFE_PATH'  // a remote layer's tree leads outside its root
  | 'ERR_REMOTE_READ_ONLY';   // a write (applyDiff) to a remote layer, whose tree is not the store's

export interface Overlay2ErrorDetails {
  id?: string;
  path?: string;
  option?: string;
  cause?: unknown;
}

export class Overlay2Error extends Error {
  readonly code: Overlay2ErrorCode;
  readonly id?: string;
  readonly path?: string;
  readonly option?: string;

  constructor(code: Overlay2ErrorCode, message: string, details: Overlay2ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'Overlay2Error';
    this.code = code;
    if (details.id !== undefined) this.id = details.id;
    if (details.path !== undefined) this.path = details.path;
    if (details.option !== undefined) this.option = details.option;
  }
}

export function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}
