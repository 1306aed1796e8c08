// The driver options of thin layers, parsed with the others (src/options.ts) and, like them,
// unknown or malformed -> ERR_BAD_OPTION:
//   cvmfsMountMethod=internal|external  (the fork's name) who mounts <root>/<repo>
//   thin.root=DIR                       where the repositories are (default <home>/cvmfs, as the fork)
//   thin.mount_command=PATH             internal: run as `PATH REPO TARGET` (no shell) on first use
// The fork defaults to internal with cvmfs2 behind `bash -c`; here internal needs the command named,
// and without one the trees are expected mounted already (external).
import { Overlay2Error } from '../errors.js';

export type ThinMountMethod = 'internal' | 'external';

export interface ThinOptions {
  /** null until chosen: internal when a mount command is given, else external */
  mountMethod: ThinMountMethod | null;
  /** absolute; null = <home>/cvmfs */
  root: string | null;
  /** absolute path of the program that mounts one repository */
  mountCommand: string | null;
}

/** The fork's thin root, as a name inside the home: `<home>/cvmfs`. */
export const DEFAULT_THIN_ROOT_NAME = 'cvmfs';

/** The home's entry the thin root is, when it lies directly in the home (the default, or a thin.root
 *  of `<home>/NAME`), else null: a new home whose repositories were mounted there first is still new. */
export function thinRootEntryIn(home: string, opts: ThinOptions): string | null {
  if (opts.root === null) return DEFAULT_THIN_ROOT_NAME;
  const prefix = home.endsWith('/') ? home : `${home}/`;
  const rest = opts.root.startsWith(prefix) ? opts.root.slice(prefix.length) : '';
  return rest !== '' && !rest.includes('/') ? rest : null;
}

export function defaultThinOptions(): ThinOptions {
  return { mountMethod: null, root: null, mountCommand: null };
}

function bad(option: string, why: string): Overlay2Error {
  return new Overlay2Error('ERR_BAD_OPTION', `overlay2: invalid ${option}: ${why}`, { option });
}

/** An absolute path without the characters mount data or the lower file read as syntax. */
function absolutePath(value: string, option: string): string {
  if (!value.startsWith('/')) throw bad(option, `${JSON.stringify(value)} is not an absolute path`);
  if (/[,:\\\x00-\x1f\x7f]/.test(value)) throw bad(option, `${JSON.stringify(value)} contains "," ":" "\\" or a control character`);
  if (value.split('/').includes('..')) throw bad(option, `${JSON.stringify(value)} contains ".."`);
  return value.length > 1 ? value.replace(/\/+$/, '') : value;
}

/** Takes one option if it is a thin option (key already lower-cased); false when it is not one. */
export function parseThinOption(out: ThinOptions, key: string, value: string): boolean {
  switch (key) {
    case 'cvmfsmountmethod':
      if (value !== 'internal' && value !== 'external') throw bad('cvmfsMountMethod', `${JSON.stringify(value)} (internal or external)`);
      out.mountMethod = value;
      return true;
    case 'thin.root':
      out.root = absolutePath(value, key);
      return true;
    case 'thin.mount_command':
      out.mountCommand = absolutePath(value, key);
      return true;
    default:
      return false;
  }
}

/** After all options: the method settled, internal only with a command to run. */
export function settleThinOptions(out: ThinOptions): void {
  out.mountMethod ??= out.mountCommand !== null ? 'internal' : 'external';
  if (out.mountMethod === 'internal' && out.mountCommand === null) {
    throw bad('cvmfsMountMethod', 'internal needs thin.mount_command=PATH (the program run as `PATH REPO TARGET` to mount a repository)');
  }
}
