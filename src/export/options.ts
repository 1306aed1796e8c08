// What an export is told: the options both entry sources and the header rules read.
import type { LayerContext } from '../context.js';

/** The context (src/context.ts: shim; userxattr — the opaque marker is user.overlay.opaque instead
 *  of trusted.overlay.opaque —; idMappings: the tar carries container ids, toContainer, except
 *  whiteouts, which keep the kernel's) plus the export's own options. */
export interface ExportOptions extends LayerContext {
  /** 'docker' (default): only security.capability, like Docker. 'all': every xattr except the
   *  overlay's own trusted.overlay.* / user.overlay.* bookkeeping. */
  xattrs?: 'docker' | 'all';
}
