// What an export is told: the options both entry sources and the header rules read.
import type { IdMappings } from '../idmap.js';

export interface ExportOptions {
  /** The opaque marker is user.overlay.opaque instead of trusted.overlay.opaque (rootless). */
  userxattr: boolean;
  /** The tar carries container ids (toContainer) — except whiteouts, which keep the kernel's. */
  idMappings: IdMappings;
  /** 'docker' (default): only security.capability, like Docker. 'all': every xattr except the
   *  overlay's own trusted.overlay.* / user.overlay.* bookkeeping. */
  xattrs?: 'docker' | 'all';
}
