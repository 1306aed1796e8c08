// The CLI's command table: one entry per command. To add a command, write its handler in its own
// file under src/cli/ (export an async function taking a CommandContext and returning the exit
// code) and add one entry here; parsing, --help, `help NAME`, usage errors and exit codes follow
// from the entry.
import type { CommandSpec } from './command.js';

const parent = { type: 'string', arg: 'P', value: 'id', help: 'the layer to compare with (default: the layer\'s own parent)' } as const;
const json = { type: 'boolean', help: 'print JSON' } as const;
/** apply, diff, load and save: a progress line on stderr (shown by default on a terminal); in usage
 *  lines as PROGRESS. */
const PROGRESS = '[--progress|--no-progress|-q]';
const progress = {
  progress: { type: 'boolean', help: 'show a progress line on stderr even when it is not a terminal' },
  'no-progress': { type: 'boolean', help: 'no progress line' },
  quiet: { type: 'boolean', short: 'q', help: 'no progress line' },
} as const;

export const COMMANDS: CommandSpec[] = [
  {
    name: 'create', group: 'Layers', usage: 'create ID [--parent P] [--rw] [--size S]', summary: 'create a layer',
    description: 'Creates an empty layer on top of P (a base layer without --parent). --rw makes a read-write (container) layer, whose size can be limited with --size where the home\'s file system keeps project quotas (xfs mounted with prjquota, or ext4 made with -O quota,project and mounted with prjquota).',
    positionals: ['ID'], writes: true,
    options: {
      parent: { type: 'string', arg: 'P', value: 'id', help: 'the layer below this one' },
      rw: { type: 'boolean', help: 'a read-write (container) layer' },
      size: { type: 'string', arg: 'S', value: 'size', help: 'quota of a read-write layer, binary units: 10G, 512M (xfs or ext4 with project quotas)' },
    },
    check: (values, usage) => {
      if (values.size !== undefined && !values.rw) usage('--size needs --rw (only a read-write layer has a quota)');
    },
    load: () => import('./layers.js').then((m) => m.create),
  },
  {
    name: 'remove', group: 'Layers', usage: 'remove ID [--force]', summary: 'remove a layer (unmounting it)',
    description: 'Removes the layer and everything in it. A layer other layers are built on, or one another live process holds mounted (a library get(), `overlay2 mount`), is refused unless --force (the children then break, the mounts are detached under their holders).',
    positionals: ['ID'], writes: true,
    options: { force: { type: 'boolean', short: 'f', help: 'remove it even when other layers are built on it or another process holds it mounted' } },
    load: () => import('./layers.js').then((m) => m.remove),
  },
  {
    name: 'exists', group: 'Layers', usage: 'exists ID', summary: 'exit 0 if the layer exists, 1 if not, 2 on errors or an incomplete layer',
    positionals: ['ID'], writes: false, errorExit: 2, options: {},
    load: () => import('./layers.js').then((m) => m.exists),
  },
  {
    name: 'ls', group: 'Layers', usage: 'ls [--json]', summary: 'list layers (--json: id, parent, size, mounted)',
    positionals: [], writes: false, options: { json },
    load: () => import('./layers.js').then((m) => m.ls),
  },
  {
    name: 'metadata', group: 'Layers', usage: 'metadata ID', summary: 'LowerDir/UpperDir/WorkDir/MergedDir as JSON',
    positionals: ['ID'], writes: false, options: {},
    load: () => import('./layers.js').then((m) => m.metadata),
  },
  {
    name: 'mount', group: 'Mounts', usage: 'mount ID [--label L]', summary: 'mount the layer, print its root path',
    description: 'Mounts the layer and prints the path of its root. Each mount is one reference kept in the home (HOME/.refs): the layer stays mounted until as many unmounts, from any process.',
    positionals: ['ID'], writes: true,
    options: { label: { type: 'string', arg: 'L', help: 'SELinux mount label (context=)' } },
    load: () => import('./mounts.js').then((m) => m.mount),
  },
  {
    name: 'unmount', group: 'Mounts', usage: 'unmount ID', summary: 'release one mount reference (the last unmounts)',
    positionals: ['ID'], writes: true, options: {},
    load: () => import('./mounts.js').then((m) => m.unmount),
  },
  {
    name: 'cleanup', group: 'Mounts', usage: 'cleanup', summary: 'unmount everything under the home, drop all references',
    positionals: [], writes: true, options: {},
    load: () => import('./mounts.js').then((m) => m.cleanup),
  },
  {
    name: 'diff', group: 'Diffs', usage: `diff ID [--parent P] [-o FILE] [--all-xattrs] ${PROGRESS}`, summary: 'the layer as a tar (stdout or FILE)',
    description: 'Writes the layer\'s changes over its parent as an uncompressed tar in Docker\'s layer format (the same bytes, so the same diffID). Refuses to write to a terminal.',
    positionals: ['ID'], writes: false,
    options: {
      parent,
      output: { type: 'string', short: 'o', arg: 'FILE', help: 'write the tar to FILE instead of stdout' },
      'all-xattrs': { type: 'boolean', help: 'carry every xattr, not only security.capability' },
      ...progress,
    },
    load: () => import('./diffs.js').then((m) => m.diff),
  },
  {
    name: 'apply', group: 'Diffs', usage: `apply ID [--parent P] [-i FILE] ${PROGRESS}`, summary: 'apply a layer tar (stdin or FILE), print the layer size',
    description: 'Extracts a layer tar (plain, gzip, zstd, xz or bzip2) into the layer and prints its size in bytes. Into a layer with its own parent (the default) the tar is unpacked beside the layer and swapped in whole; against another --parent it is written through a mount.',
    positionals: ['ID'], writes: true,
    options: { parent: { ...parent, help: 'the layer the tar\'s changes are over (default: the layer\'s own parent)' }, input: { type: 'string', short: 'i', arg: 'FILE', help: 'read the tar from FILE instead of stdin' }, ...progress },
    load: () => import('./diffs.js').then((m) => m.apply),
  },
  {
    name: 'diffsize', group: 'Diffs', usage: 'diffsize ID [--parent P]', summary: 'bytes the layer adds',
    positionals: ['ID'], writes: false, options: { parent },
    load: () => import('./diffs.js').then((m) => m.diffsize),
  },
  {
    name: 'changes', group: 'Diffs', usage: 'changes ID [--parent P] [--json]', summary: 'changed paths, like docker diff',
    positionals: ['ID'], writes: false, options: { parent, json },
    load: () => import('./diffs.js').then((m) => m.changes),
  },
  {
    name: 'load', group: 'Images', usage: `load FILE|DIR|- [--json] ${PROGRESS}`, summary: 'load a docker save archive or OCI layout, print "<top layer> <config digest>"',
    description: 'Loads every image of a `docker save` archive (legacy or OCI-style) or an OCI image layout (directory or tar; "-" reads stdin). Blob digests and diffIDs are verified while streaming; layers are stored under their chain IDs and reused when already there. On any failure nothing is left behind.',
    positionals: ['FILE|DIR'], writes: true, options: { json, ...progress },
    load: () => import('./image-commands.js').then((m) => m.load),
  },
  {
    name: 'save', group: 'Images', usage: `save TOP -o FILE [--format docker|oci] [--tag NAME]... [--json] ${PROGRESS}`, summary: 'the chain ending at TOP as an image archive',
    description: 'Writes the layer chain ending at TOP as an image archive that `docker load` and skopeo read: each layer with the exact bytes (and diffID) it was applied from, a locally made layer as Docker would export it. Prints the image config\'s digest.',
    positionals: ['TOP'], writes: false,
    options: {
      output: { type: 'string', short: 'o', arg: 'FILE', help: 'the archive to write (required)' },
      format: { type: 'string', arg: 'docker|oci', value: ['docker', 'oci'], help: 'docker-archive (default) or an OCI image layout tar' },
      tag: { type: 'string', arg: 'NAME', multiple: true, help: 'a repository tag for the image (repeatable)' },
      json, ...progress,
    },
    load: () => import('./image-commands.js').then((m) => m.save),
  },
  {
    name: 'plugin', group: 'Docker', usage: 'plugin [bundle -o DIR] [--name N] [--socket PATH] [--grace S] [--propagated-mount DIR] [--log-level L]', summary: 'serve dockerd\'s graphdriver plugin protocol until SIGTERM; bundle: write a managed plugin',
    description: 'Serves this driver to dockerd as a graphdriver plugin (dockerd --experimental --storage-driver N) on a unix socket, default /run/docker/plugins/N.sock, N = overlay2-node. The home is the one dockerd sends in GraphDriver.Init unless --home is given; with --propagated-mount DIR (how a managed plugin runs), one directory inside DIR per driver name, and the driver options the environment sets (THIN_ROOT, CVMFS_MOUNT_METHOD, THIN_MOUNT_COMMAND, DRIVER_OPTS) come first. SIGTERM or SIGINT: calls in flight finish (or are cut after the grace time), everything is unmounted, the socket removed. `plugin bundle -o DIR` writes DIR/config.json and DIR/rootfs/ (node, its libraries and this package, from this machine) for `docker plugin create N DIR`.',
    positionals: [], optionalPositionals: ['bundle'], writes: true,
    options: {
      name: { type: 'string', arg: 'N', help: 'the plugin (storage driver) name: letters, digits, . _ - (default overlay2-node)' },
      socket: { type: 'string', arg: 'PATH', help: 'the unix socket (default /run/docker/plugins/N.sock)' },
      grace: { type: 'string', arg: 'SECONDS', value: 'seconds', help: 'how long calls in flight may finish at shutdown (default 5)' },
      'propagated-mount': { type: 'string', arg: 'DIR', help: 'run as a managed plugin: each driver name\'s home is a directory inside DIR' },
      'log-level': { type: 'string', arg: 'L', value: ['debug', 'info', 'error'], help: 'debug (a line per call; Diff and ApplyDiff add the stream workers\' counts), info (default) or error' },
      output: { type: 'string', short: 'o', arg: 'DIR', help: 'bundle: the directory to write (new or empty)' },
    },
    load: () => import('./plugin-command.js').then((m) => m.plugin),
  },
  {
    name: 'snapshotter', group: 'containerd', usage: 'snapshotter [--socket PATH] [--remote-layers DIR]... [--log-level L] [--grace SECONDS]', summary: 'serve the home to containerd as a proxy snapshotter until SIGTERM',
    description: 'Serves the home to containerd as a proxy snapshotter (containerd\'s Snapshots gRPC API; config.toml: [proxy_plugins.NAME] type = "snapshot", address = PATH) on a unix socket, default /run/overlay2/snapshotter.sock. Snapshots are layers of the home: ls, changes, diff and diffsize work on them. A socket left by a killed run is replaced. SIGTERM or SIGINT: calls in flight finish (or are cut after the grace time), the socket is removed.',
    positionals: [], writes: true,
    options: {
      socket: { type: 'string', arg: 'PATH', help: 'the unix socket (default /run/overlay2/snapshotter.sock)' },
      'remote-layers': { type: 'string', arg: 'DIR', multiple: true, help: 'a read-only tree whose layers containerd need not download (CVMFS/DUCC .layers/<xx>/<hex>/layerfs, thin make\'s layers/<hex>); repeatable, searched in order' },
      'log-level': { type: 'string', arg: 'L', value: ['debug', 'info', 'error'], help: 'debug (a line per call), info (default) or error' },
      grace: { type: 'string', arg: 'SECONDS', value: 'seconds', help: 'how long calls in flight may finish at shutdown (default 5)' },
    },
    load: () => import('./snapshotter-command.js').then((m) => m.snapshotter),
  },
  {
    name: 'batch', group: 'Scripting', usage: 'batch [-f FILE] [--json]', summary: 'run many commands in one process, one per line of stdin or FILE',
    description: 'Reads command lines, one per line, each written as after `overlay2` in a shell (words split on blanks, \'…\' and "…" quoting, backslash escapes, nothing expanded; blank lines and lines starting with # are skipped), and runs them in order in this one process, so Node starts and each home is opened once. The batch\'s --home and -o are every line\'s defaults. Prints one line per command: its exit code, then its output on one line (JSON compacted, other lines joined by spaces) or its error; --json: one JSON object per command ({line, exit, output, error?}). A failed command does not stop the batch; the exit status is the highest of the commands\'. Inside a batch, diff needs -o FILE, apply needs -i FILE, load cannot read stdin, and batch, plugin and demo cannot run.',
    positionals: [], writes: false,
    options: { file: { type: 'string', short: 'f', arg: 'FILE', help: 'read the commands from FILE instead of stdin' }, json },
    load: () => import('./batch.js').then((m) => m.batch),
  },
  {
    name: 'thin', group: 'Thin layers', usage: 'thin make|commit|show|check ID [--repo R] [-o FILE] [--root D] [--parent P] [--origin NAME] [--json]',
    summary: 'publish (make, commit) and inspect (show, check) thin layers',
    description: 'make ID: every layer of ID\'s chain unpacked into <root>/R/layers/<diffID hex> (an existing tree reused), the manifest printed and its one-file tar written to FILE (apply it to get the image back). commit ID --parent P: P\'s chain plus ID\'s changes over P as a new top layer. show ID: the nearest thin layer at or below ID and its manifest. check ID: every thin tree ID mounts is there, readable and inside its repository (exit 1 if not). The root is --root, else thin.root (-o before the command), else <home>/cvmfs.',
    positionals: ['SUBCOMMAND', 'ID'], writes: false,
    options: {
      repo: { type: 'string', arg: 'R', help: 'make/commit: the repository the trees go to' },
      root: { type: 'string', arg: 'D', help: 'make/commit: the thin root (default thin.root, else <home>/cvmfs)' },
      parent: { type: 'string', arg: 'P', value: 'id', help: 'commit: the layer the changes are over' },
      output: { type: 'string', short: 'o', arg: 'FILE', help: 'make/commit: where the thin image\'s layer tar goes' },
      origin: { type: 'string', arg: 'NAME', help: 'make/commit: the manifest\'s origin field' },
      json,
    },
    load: () => import('./thin-commands.js').then((m) => m.thin),
  },
  {
    name: 'status', group: 'Driver', usage: 'status [--json]', summary: 'backing filesystem, features, layer count and disk use',
    positionals: [], writes: false, options: { json },
    load: () => import('./status.js').then((m) => m.status),
  },
  {
    name: 'demo', group: 'Driver', usage: 'demo', summary: 'build, mount, diff and clean up a sample stack in a temporary home',
    positionals: [], writes: true, options: {},
    load: () => import('./demo.js').then((m) => async () => { await m.runDemo(); return 0; }),
  },
];

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}
