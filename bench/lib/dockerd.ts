// Private Docker daemons for the end-to-end test and the Docker benchmark: dockerd 20.10 from Debian's
// docker.io, each with its own data root, exec root, pid file, API socket and config, nothing shared
// with a system Docker. One runs on our plugin (served by `overlay2 plugin` as a child process), one
// on Docker's built-in overlay2, so the same steps can be compared side by side.
import { spawn, execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, readFileSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const DOCKERD = '/usr/sbin/dockerd';
/** Debian's client (docker.io); another docker on PATH may speak a newer API than dockerd 20.10. */
export const DOCKER = '/usr/bin/docker';
export const BUSYBOX = '/bin/busybox';
export const PLUGIN_DIR = '/run/docker/plugins';

/** Why the Docker end-to-end runs cannot run here ('' when they can). */
export function whyNoDocker(): string {
  if (process.getuid?.() !== 0) return 'dockerd needs root';
  for (const [bin, pkg] of [[DOCKERD, 'docker.io'], [DOCKER, 'docker.io'], [BUSYBOX, 'busybox-static']]) {
    if (!existsSync(bin)) return `${bin} is missing (apt-get install ${pkg})`;
  }
  const v = spawnSync(DOCKERD, ['--version'], { encoding: 'utf8' });
  if (v.status !== 0) return `${DOCKERD} --version failed: ${v.stderr.trim()}`;
  if (!/version 20\.10\./.test(v.stdout)) return `${DOCKERD} is not dockerd 20.10 (${v.stdout.trim()})`;
  const file = spawnSync('file', ['-L', BUSYBOX], { encoding: 'utf8' });
  if (file.status === 0 && !/statically linked/.test(file.stdout)) return `${BUSYBOX} is not statically linked (apt-get install busybox-static)`;
  return '';
}

export interface DockerResult { code: number | null; out: string; err: string }

export interface PrivateDockerd {
  /** The storage driver name dockerd runs with. */
  driver: string;
  root: string;
  dataRoot: string;
  socket: string;
  /** Runs the docker client against this daemon (asynchronously: an in-process plugin keeps serving). */
  docker(args: string[], opts?: { input?: Buffer | string; allowFail?: boolean }): Promise<DockerResult>;
  /** SIGTERM, wait for exit (then SIGKILL after 30 s). */
  stop(): Promise<void>;
  log(): string;
}

/** A unique plugin name for one run, so parallel runs never share a socket. */
export function uniquePluginName(prefix = 'ovl2-e2e'): string {
  return `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export async function startDockerd(root: string, driver: string, opts: { experimental?: boolean; storageOpts?: string[] } = {}): Promise<PrivateDockerd> {
  mkdirSync(root, { recursive: true });
  const dataRoot = join(root, 'data');
  const execRoot = join(root, 'exec');
  const socket = join(root, 'docker.sock');
  const pidfile = join(root, 'docker.pid');
  const config = join(root, 'daemon.json');
  const logFile = join(root, 'dockerd.log');
  const clientConfig = join(root, 'client');
  mkdirSync(clientConfig, { recursive: true });
  writeFileSync(config, '{}\n');
  const tag = `${process.pid}-${randomBytes(3).toString('hex')}`;
  const args = [
    ...(opts.experimental ? ['--experimental'] : []),
    '--data-root', dataRoot, '--exec-root', execRoot, '--pidfile', pidfile, '--host', `unix://${socket}`,
    '--config-file', config, '--storage-driver', driver,
    ...(opts.storageOpts ?? []).flatMap((o) => ['--storage-opt', o]),
    '--iptables=false', '--ip6tables=false', '--bridge=none',
    // dockerd uses a system containerd when one listens on /run/containerd/containerd.sock (else it
    // starts its own under the exec root); own namespaces keep even that case apart.
    '--containerd-namespace', `ovl2-${tag}`, '--containerd-plugins-namespace', `ovl2-${tag}-plugins`,
  ];
  const out = openSync(logFile, 'a');
  const child: ChildProcess = spawn(DOCKERD, args, { stdio: ['ignore', out, out] });
  closeSync(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_CONFIG: clientConfig, DOCKER_HOST: `unix://${socket}` };
  delete env.DOCKER_CONTEXT;

  const docker: PrivateDockerd['docker'] = (dargs, o = {}) => new Promise((resolve, reject) => {
    const p = execFile(DOCKER, ['-H', `unix://${socket}`, ...dargs], { env, maxBuffer: 1 << 28, encoding: 'buffer' },
      (error, stdout, stderr) => {
        const r = { code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout.toString(), err: stderr.toString() };
        if (r.code !== 0 && !o.allowFail) {
          reject(new Error(`docker ${dargs.join(' ')} (on ${driver}) exited ${r.code}: ${r.err.trim()}`));
        } else {
          resolve(r);
        }
      });
    if (o.input !== undefined) p.stdin?.end(o.input);
    else p.stdin?.end();
  });

  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  };

  // Ready when the API answers; give up (with the daemon's log) after 60 s on a loaded machine.
  const until = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`dockerd (${driver}) exited ${child.exitCode} at start:\n${log().slice(-3000)}`);
    const r = await docker(['version', '--format', '{{.Server.Version}}'], { allowFail: true });
    if (r.code === 0) break;
    if (Date.now() > until) {
      await stop();
      throw new Error(`dockerd (${driver}) did not answer within 60 s:\n${log().slice(-3000)}`);
    }
    await new Promise((res) => setTimeout(res, 250));
  }
  return { driver, root, dataRoot, socket, docker, stop, log };
}

export interface PluginProcess {
  name: string;
  socket: string;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  stderr(): string;
}

/** Starts `overlay2 plugin --name NAME` (the CLI, as a user runs it) and waits until it listens. */
export async function startPluginProcess(cli: string, name: string, nodeArgs: string[] = []): Promise<PluginProcess> {
  const socket = join(PLUGIN_DIR, `${name}.sock`);
  const child = spawn(process.execPath, [...nodeArgs, cli, 'plugin', '--name', name], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })));
  const until = Date.now() + 20_000;
  while (!stderr.includes(`serving ${name}`)) {
    if (child.exitCode !== null) throw new Error(`overlay2 plugin exited ${child.exitCode}: ${stderr}`);
    if (Date.now() > until) { child.kill('SIGKILL'); throw new Error(`overlay2 plugin did not start: ${stderr}`); }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    name,
    socket,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const r = await exited;
      clearTimeout(timer);
      return { ...r, stderr };
    },
  };
}

/** Writes a busybox-static root filesystem into `dir`: /bin/busybox and a symlink per applet used. */
export function writeBusyboxRoot(dir: string, applets: readonly string[]): void {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  for (const d of ['etc', 'tmp', 'proc', 'sys', 'dev']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'bin', 'busybox'), readFileSync(BUSYBOX), { mode: 0o755 });
  for (const a of applets) {
    spawnSync('ln', ['-sf', 'busybox', join(dir, 'bin', a)]);
  }
  writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(dir, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
}

export interface ManagedDockerd extends PrivateDockerd {
  /** The plugin's name as dockerd lists it (NAME:latest). */
  plugin: string;
  /** The plugin's id (its directory under DATA_ROOT/plugins). */
  pluginId: string;
  /** Where the plugin's propagated mount is on this side: DATA_ROOT/plugins/ID/propagated-mount. */
  propagated: string;
}

/**
 * dockerd on a managed plugin, the way a user switches a daemon to it: a daemon on the built-in
 * overlay2 runs `docker plugin create NAME BUNDLE`, `docker plugin set NAME K=V` for each setting and
 * `docker plugin enable NAME`, stops, and the same daemon (same data root, where plugins live) is
 * started again with `--storage-driver NAME:latest`.
 */
export async function startManagedDockerd(root: string, bundle: string, name: string,
  opts: { settings?: string[]; storageOpts?: string[] } = {}): Promise<ManagedDockerd> {
  const setup = await startDockerd(root, 'overlay2', { experimental: true });
  try {
    await setup.docker(['plugin', 'create', name, bundle]);
    if (opts.settings?.length) await setup.docker(['plugin', 'set', name, ...opts.settings]);
    await setup.docker(['plugin', 'enable', name]);
  } finally {
    await setup.stop();
  }
  const plugin = `${name}:latest`;
  const d = await startDockerd(root, plugin, { experimental: true, storageOpts: opts.storageOpts });
  const pluginId = (await d.docker(['plugin', 'inspect', '--format', '{{.Id}}', plugin])).out.trim();
  return { ...d, plugin, pluginId, propagated: join(d.dataRoot, 'plugins', pluginId, 'propagated-mount') };
}

/** Mount points at or below `dir` in this process's mount namespace. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p === dir || p.startsWith(dir + '/'));
}
