// The plugin as a *managed* Docker plugin (`docker plugin create` / `enable`): what differs from the
// plugin a user starts beside dockerd is where its homes live and where its settings come from.
//
// Homes. dockerd 20.10 opens a plugin driver with Init's Home = <propagatedMount>/<the name given to
// --storage-driver> (daemon/graphdriver/plugin.go newPluginDriver: filepath.Join(home, name)), and
// that name is a plugin reference: `ovl2:latest`, `example/ovl2-graphdriver`. A ':' cannot be carried
// in overlay's mount options and a '/' nests the home in a directory of another name, so the server
// maps each Init home to one directory directly inside the propagated mount, named after the driver
// name with every byte outside [A-Za-z0-9._-] written as %XX: `ovl2` stays `ovl2`,
// `ovl2:latest` is `ovl2%3Alatest`, `example/ovl2-graphdriver` is `example%2Fovl2-graphdriver`. The map
// is one to one (a name Docker accepts holds no '%') and depends on the name alone, so each name
// keeps its home across restarts — as dockerd keeps its image metadata per name (image/<name>/), two
// spellings of one plugin (`ovl2`, `ovl2:latest`) are two stores, and so are their homes.
//
// Settings. `docker plugin set NAME KEY=VALUE` changes the plugin's environment; the driver options
// it stands for (MANAGED_SETTINGS) come before dockerd's --storage-opt list, so a daemon's own option
// of the same key wins.
import { join, relative, isAbsolute } from 'node:path';
import { BadRequest } from './protocol.js';

/** Where the bundle's config puts the propagated mount inside the plugin: the homes live below it. */
export const MANAGED_PROPAGATED_MOUNT = '/var/lib/overlay2';

/** The plugin's environment settings and the driver option each one sets (empty: not set). */
export const MANAGED_SETTINGS = [
  { env: 'THIN_ROOT', option: 'thin.root', description: 'thin.root: where thin layers\' repositories are mounted, a path inside the plugin (default: <home>/cvmfs, inside the propagated mount)' },
  { env: 'CVMFS_MOUNT_METHOD', option: 'cvmfsMountMethod', description: 'cvmfsMountMethod: external (the trees are mounted already) or internal (run THIN_MOUNT_COMMAND)' },
  { env: 'THIN_MOUNT_COMMAND', option: 'thin.mount_command', description: 'thin.mount_command: the program (inside the plugin) that mounts a repository: PROGRAM REPO TARGET' },
] as const;

/** A setting of more driver options, key=value separated by blanks, as dockerd's --storage-opt list. */
export const MANAGED_OPTS_ENV = 'DRIVER_OPTS';

/** The driver options the plugin's environment sets, in MANAGED_SETTINGS order, then DRIVER_OPTS's. */
export function settingsOptions(env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const s of MANAGED_SETTINGS) {
    const value = env[s.env];
    if (value) out.push(`${s.option}=${value}`);
  }
  out.push(...(env[MANAGED_OPTS_ENV] ?? '').split(/\s+/).filter(Boolean));
  return out;
}

/** A driver name as one directory name: bytes outside [A-Za-z0-9._-] as %XX (see the file header). */
export function homeDirName(driverName: string): string {
  let out = '';
  for (const byte of Buffer.from(driverName, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9._-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * The home the managed plugin serves for the Home dockerd sent in Init: one directory inside the
 * propagated mount named after the driver name. A Home outside the propagated mount (dockerd
 * always sends one inside it) is a 400: a driver home there would not be visible to dockerd.
 */
export function managedHome(method: string, propagatedMount: string, initHome: string): string {
  const rel = relative(propagatedMount, initHome);
  if (rel === '' || isAbsolute(rel) || rel.split('/').some((part) => part === '..' || part === '.')) {
    throw new BadRequest(400, `${method}: Home ${JSON.stringify(initHome)} is not beneath the propagated mount ${propagatedMount}`);
  }
  const name = homeDirName(rel);
  // "." and ".." alone cannot come from `relative`; a name of dots only would still be odd to see.
  if (/^\.+$/.test(name)) throw new BadRequest(400, `${method}: Home ${JSON.stringify(initHome)} names no driver`);
  return join(propagatedMount, name);
}
