// Overlay mount options, built as moby builds them (index=off, userxattr, lowerdir/upperdir/workdir,
// SELinux context=), plus redirect_dir=off and metacopy=off: with those the kernel never writes
// redirects or metacopy files into our upper dirs, so the native diff can trust the upper dir alone.
import { Overlay2Error } from '../errors.js';

/** What the probed kernel decided about the options every mount carries (see src/features.ts). */
export interface BaseOptionChoices {
  indexOff: boolean;
  userxattr: boolean;
  redirectDirOff: boolean;
  metacopyOff: boolean;
}

/** The leading options every overlay mount of this driver carries, in moby's order. */
export function baseOptions(f: BaseOptionChoices): string[] {
  const opts: string[] = [];
  if (f.indexOff) opts.push('index=off');
  if (f.userxattr) opts.push('userxattr');
  // The kernel refuses userxattr with redirect_dir=off ("conflicting options"): nofollow is the
  // same promise for our purposes — no redirects are written — and the only one it takes there.
  if (f.redirectDirOff) opts.push(f.userxattr ? 'redirect_dir=nofollow' : 'redirect_dir=off');
  if (f.metacopyOff) opts.push('metacopy=off');
  return opts;
}

/** Go's %q for the characters an SELinux label can hold. */
function goQuote(s: string): string {
  return '"' + s.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}

/**
 * Throws ERR_BAD_OPTION for a mount label that could break out of its quotes in the mount data
 * ("\"", "\\") or of its line (control characters). Real SELinux labels
 * ("system_u:object_r:container_file_t:s0:c1,c2") hold ":" and "," — the quotes carry those.
 */
export function validateMountLabel(label: string | undefined): void {
  if (label === undefined || label === '') return;
  if (typeof label !== 'string' || /["\\\x00-\x1f\x7f]/.test(label)) {
    throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: invalid mount label ${JSON.stringify(label)}: quotes, backslashes and control characters are not allowed`,
      { option: 'mountLabel' });
  }
}

/** go-selinux's label.FormatMountLabel: appends context="LABEL" only when SELinux is enabled. */
export function formatMountLabel(src: string, mountLabel: string | undefined, selinuxEnabled: boolean): string {
  if (!selinuxEnabled || !mountLabel) return src;
  return src === '' ? `context=${goQuote(mountLabel)}` : `${src},context=${goQuote(mountLabel)}`;
}

export interface OverlayLayers {
  /** lower dirs, topmost first */
  lowers: string[];
  /** upper and work dirs; absent for a read-only mount */
  upper?: string;
  work?: string;
}

/** The mount(2) data string: "index=off,...,lowerdir=A:B,upperdir=U,workdir=W[,context=...]". */
export function mountData(base: string[], layers: OverlayLayers, mountLabel: string | undefined, selinuxEnabled: boolean): string {
  let opts = base.map((o) => o + ',').join('') + 'lowerdir=' + layers.lowers.join(':');
  if (layers.upper !== undefined) opts += ',upperdir=' + layers.upper + ',workdir=' + layers.work;
  return formatMountLabel(opts, mountLabel, selinuxEnabled);
}

/** Characters the legacy option string cannot carry unescaped in a path. */
export function pathFitsMountData(p: string): boolean {
  return !/[,:\\\n]/.test(p);
}
