// `overlay2 plugin bundle`: a managed Docker plugin made from this machine's own files, for
// `docker plugin create NAME DIR` (moby docs/extend/config.md, plugin config version 1 of plugin v2).
// DIR/config.json says how dockerd runs it; DIR/rootfs/ is all it runs on: the node binary and the
// shared libraries `ldd` names for it and the native shim, this package's runtime files (the bundled
// CLI, the WASM core, the shim, package.json, proto/) and its production dependencies, and the empty
// directories Docker mounts over. Nothing is downloaded.
//
// What the config asks for, and why no more: CAP_SYS_ADMIN beyond Docker's default set (mount(2),
// fsopen/fsmount, trusted.overlay.* xattrs); CAP_MKNOD and CAP_CHOWN are in the default set and the
// plugin's devices cgroup allows mknod of any device, which whiteouts (0/0) need. No devices, no
// mounts, no network (a unix socket in /run/docker/plugins is all dockerd needs), no host pid/ipc.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { Overlay2Error } from '../errors.js';
import { shimCandidates } from '../native/shim.js';
import { packageVersion } from '../version.js';
import { PLUGIN_SOCKET_DIR } from './protocol.js';
import { BUILTIN_DRIVERS, DEFAULT_PLUGIN_NAME } from './server.js';
import { MANAGED_OPTS_ENV, MANAGED_PROPAGATED_MOUNT, MANAGED_SETTINGS } from './managed.js';

/**
 * The socket's name inside /run/docker/plugins. Short and fixed: dockerd dials it on its side as
 * /run/docker/plugins/<64-hex plugin id>/<socket>, which must fit a unix socket path (107 bytes), so
 * a socket named after a long plugin name is refused at `docker plugin enable` ("is too long").
 */
export const MANAGED_SOCKET = 'overlay2.sock';

/** Where the package and node sit inside the plugin's rootfs. */
const PACKAGE_DIR = '/opt/overlay2';
const NODE_PATH = '/usr/local/bin/node';
/** Where the shim is copied to: the first place src/native/shim.ts looks. */
const SHIM_PATH = 'shim/build/Release/overlay2_shim.node';
/** The package's files the plugin runs (the CLI bundle requires npm packages from node_modules). */
const PACKAGE_FILES = ['package.json', 'dist/cli', 'build/core.wasm', 'proto', 'LICENSE'];

export interface BundleOptions {
  /** The name the plugin is meant to be created under (`docker plugin create NAME DIR`): it only
   *  appears in the config's description; default overlay2-node. */
  name?: string;
}

export interface BundleResult {
  dir: string;
  name: string;
  /** Bytes written under rootfs/. */
  bytes: number;
  /** The config.json written. */
  config: PluginConfig;
}

/** The fields of moby's api/types/plugin.PluginConfig this bundle sets. */
export interface PluginConfig {
  description: string;
  documentation: string;
  entrypoint: string[];
  workdir: string;
  interface: { types: string[]; socket: string };
  propagatedMount: string;
  linux: { capabilities: string[]; allowAllDevices: boolean; devices: [] };
  mounts: [];
  env: { name: string; description: string; settable: ['value']; value: string }[];
  args: { name: string; description: string; settable: ['value']; value: string[] };
}

/** A plugin reference as `docker plugin create` takes it: [registry/][path/]name[:tag], lower case. */
const PLUGIN_REFERENCE = /^[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$/;

export function pluginConfig(name: string): PluginConfig {
  if (!PLUGIN_REFERENCE.test(name) || BUILTIN_DRIVERS.has(name)) {
    throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: plugin bundle: invalid name ${JSON.stringify(name)}: a plugin name is lower-case letters, digits, . _ - and / (path), then :TAG, and no built-in driver's name`, { option: 'name' });
  }
  return {
    description: `overlay2 ${packageVersion()}: Docker's overlay2 storage driver, with thin layers, as a graphdriver plugin (${name})`,
    documentation: 'README.md of the overlay2 package: "Docker: the managed plugin"',
    entrypoint: [NODE_PATH, `${PACKAGE_DIR}/dist/cli/overlay2.cjs`, 'plugin',
      '--socket', `${PLUGIN_SOCKET_DIR}/${MANAGED_SOCKET}`, '--propagated-mount', MANAGED_PROPAGATED_MOUNT],
    workdir: '/',
    interface: { types: ['docker.graphdriver/1.0'], socket: MANAGED_SOCKET },
    propagatedMount: MANAGED_PROPAGATED_MOUNT,
    linux: { capabilities: ['CAP_SYS_ADMIN'], allowAllDevices: false, devices: [] },
    mounts: [],
    env: [
      ...MANAGED_SETTINGS.map((s) => ({ name: s.env, description: s.description, settable: ['value'] as ['value'], value: '' })),
      { name: MANAGED_OPTS_ENV, description: 'more driver options, key=value separated by blanks (dockerd\'s --storage-opt wins on the same key)', settable: ['value'], value: '' },
      // glibc returns a freed stream buffer (MiB-sized) to the kernel instead of keeping it in its
      // arenas, so the service's RSS follows what is in use, not the peak of overlapping streams
      // (bench/RESULTS.md: the soak with and without it)
      { name: 'MALLOC_MMAP_THRESHOLD_', description: 'glibc: allocations from this many bytes up are mapped, and unmapped when freed', settable: ['value'], value: '131072' },
    ],
    args: { name: 'args', description: 'more options of `overlay2 plugin`, e.g. --grace 30', settable: ['value'], value: [] },
  };
}

/** Writes config.json and rootfs/ into `dir` (absent or empty). */
export function writePluginBundle(dir: string, options: BundleOptions = {}): BundleResult {
  const name = options.name ?? DEFAULT_PLUGIN_NAME;
  const config = pluginConfig(name);
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: plugin bundle: ${dir} is not empty; give a new or empty directory`, { path: dir });
  }
  const root = packageRoot();
  const rootfs = join(dir, 'rootfs');
  const pkg = join(rootfs, PACKAGE_DIR);
  mkdirSync(pkg, { recursive: true });

  for (const f of PACKAGE_FILES) {
    if (existsSync(join(root, f))) cpSync(join(root, f), join(pkg, f), { recursive: true, dereference: true });
  }
  if (!existsSync(join(pkg, 'dist/cli/overlay2.cjs'))) {
    throw new Overlay2Error('ERR_NOT_SUPPORTED', `overlay2: plugin bundle: ${root}/dist/cli/overlay2.cjs is missing (run \`npm run build:ts\`)`);
  }
  const shim = shimFile(root);
  copyFile(shim, join(pkg, SHIM_PATH));
  for (const { from, to } of productionPackages(root)) {
    cpSync(from, join(pkg, to), {
      recursive: true, dereference: true,
      // a package's own node_modules are copied as packages of their own, and only when needed
      filter: (src) => relative(from, src).split('/')[0] !== 'node_modules',
    });
  }

  const node = process.execPath;
  copyFile(node, join(rootfs, NODE_PATH));
  for (const lib of new Set([...sharedLibraries(node), ...sharedLibraries(shim)])) copyFile(lib, join(rootfs, lib));

  // Docker mounts over these: the socket directory, the propagated mount; /tmp for Node.
  mkdirSync(join(rootfs, PLUGIN_SOCKET_DIR), { recursive: true });
  mkdirSync(join(rootfs, MANAGED_PROPAGATED_MOUNT), { recursive: true });
  mkdirSync(join(rootfs, 'tmp'), { recursive: true });
  chmodSync(join(rootfs, 'tmp'), 0o1777);

  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  return { dir, name, bytes: treeBytes(rootfs), config };
}

function copyFile(from: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  cpSync(from, to, { dereference: true });
}

/** This package's root: the nearest directory above this file whose package.json is overlay2's. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'overlay2') return dir;
    } catch { /* not here */ }
    const up = dirname(dir);
    if (up === dir) throw new Overlay2Error('ERR_NOT_SUPPORTED', 'overlay2: plugin bundle: cannot find the overlay2 package\'s package.json above the running file');
    dir = up;
  }
}

/** The shim this process would load (its own build, or the prebuilt platform package's file). */
function shimFile(root: string): string {
  const require = createRequire(join(root, 'package.json'));
  for (const c of shimCandidates()) {
    try {
      const file = c.startsWith('/') ? c : require.resolve(c);
      if (existsSync(file)) return file;
    } catch { /* not installed */ }
  }
  throw new Overlay2Error('ERR_NOT_SUPPORTED', 'overlay2: plugin bundle: the native shim is not built (run `npm rebuild overlay2`)');
}

/**
 * Every package `dependencies` reaches from the root, each as where it is (`from`, a real path) and
 * where it goes under the package in the rootfs (`to`: node_modules/a, node_modules/a/node_modules/b).
 * A package is found the way Node resolves it: the nearest node_modules up from the requiring package,
 * however far up (an installed package's dependencies are usually hoisted beside it). In the rootfs
 * each goes to the package's own node_modules, or — when another version holds that name there —
 * beneath the package that requires it, where Node looks first. Optional dependencies are taken
 * when installed.
 */
function productionPackages(root: string): { from: string; to: string }[] {
  const placed = new Map<string, string>();
  const visit = (requirer: string, requirerTo: string, pkg: PackageJson, includeOptional: boolean): void => {
    const deps = pkg.dependencies ?? {};
    const optional = includeOptional ? pkg.optionalDependencies ?? {} : {};
    for (const dep of [...Object.keys(deps), ...Object.keys(optional)]) {
      const from = resolvePackage(requirer, dep);
      if (from === null) {
        if (dep in optional) continue;
        throw new Overlay2Error('ERR_NOT_SUPPORTED', `overlay2: plugin bundle: the dependency ${dep} is not installed (run \`npm ci\`)`);
      }
      const top = `node_modules/${dep}`;
      const to = placed.get(top) === undefined || placed.get(top) === from ? top : `${requirerTo}/node_modules/${dep}`;
      if (placed.get(to) === from) continue;
      placed.set(to, from);
      visit(from, to, readPackageJson(from), true);
    }
  };
  // the platform package only carries the shim, which is copied on its own
  visit(root, '', readPackageJson(root), false);
  return [...placed].map(([to, from]) => ({ from, to })).sort((x, y) => (x.to < y.to ? -1 : 1));
}

interface PackageJson { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> }

function readPackageJson(dir: string): PackageJson {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/** Where Node finds package `dep` required from `dir`: DIR/node_modules/dep, then each parent's. */
function resolvePackage(dir: string, dep: string): string | null {
  for (let d = dir; ; d = dirname(d)) {
    const candidate = join(d, 'node_modules', dep);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dirname(d) === d) return null;
  }
}

/** The absolute paths of the shared libraries `ldd` lists for an ELF file (the loader included). */
function sharedLibraries(file: string): string[] {
  let out: string;
  try {
    out = execFileSync('ldd', [file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new Overlay2Error('ERR_NOT_SUPPORTED', 'overlay2: plugin bundle: ldd is missing (apt-get install libc-bin)');
    // a statically linked file: "not a dynamic executable"
    if (/not a dynamic executable/.test(err.stderr ?? '')) return [];
    throw new Overlay2Error('ERR_NOT_SUPPORTED', `overlay2: plugin bundle: ldd ${file} failed: ${(err.stderr ?? '').trim().split('\n')[0]}`);
  }
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)\s+\(/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]!);
    else if (/=>\s+not found/.test(line)) {
      throw new Overlay2Error('ERR_NOT_SUPPORTED', `overlay2: plugin bundle: ${file} needs a library this machine lacks: ${line.trim()}`);
    }
  }
  return libs;
}

function treeBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const st = statSync(join(dir, name), { throwIfNoEntry: false });
    if (st?.isFile()) total += st.size;
  }
  return total;
}
