// A private containerd for the end-to-end tests: Debian's containerd 1.6 with its own root, state,
// sockets and config in a temp dir, nothing shared with a system containerd (shim sockets still go to
// /run/containerd/s, named by a hash of our own socket address, so they cannot collide), with proxy
// snapshotters (ours: startSnapshotter in ./snapshots-client.ts) in its config; and `ctr` against it.
import { spawn, execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, readFileSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const CONTAINERD = '/usr/bin/containerd';
export const CTR = '/usr/bin/ctr';
export const RUNC = '/usr/sbin/runc';
export const RUNC_SHIM = '/usr/bin/containerd-shim-runc-v2';

/** Why a private containerd cannot run containers here ('' when it can). */
export function whyNoContainerd(): string {
  if (process.getuid?.() !== 0) return 'containerd needs root';
  for (const [bin, pkg] of [[CONTAINERD, 'containerd'], [CTR, 'containerd'], [RUNC_SHIM, 'containerd'], [RUNC, 'runc']]) {
    if (!existsSync(bin)) return `${bin} is missing (apt-get install ${pkg})`;
  }
  const v = spawnSync(CONTAINERD, ['--version'], { encoding: 'utf8' });
  if (v.status !== 0) return `${CONTAINERD} --version failed: ${v.stderr.trim()}`;
  if (!/ (v?1\.[67]\.)/.test(v.stdout)) return `${CONTAINERD} is not containerd 1.6 or 1.7 (${v.stdout.trim()})`;
  return '';
}

/** A name unique to this run (namespaces, container ids, image tags), so leftovers of another run never collide. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export interface CmdResult { code: number; out: string; err: string; stdout: Buffer }

/** Runs a command asynchronously (a snapshotter in this process's children keeps serving); rejects on a non-zero exit unless allowFail. */
export function run(bin: string, args: string[], opts: { input?: Buffer | string; allowFail?: boolean; timeoutMs?: number; what?: string } = {}): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const p = execFile(bin, args, { maxBuffer: 1 << 28, encoding: 'buffer', timeout: opts.timeoutMs ?? 120_000, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        const r = { code, out: stdout.toString(), err: stderr.toString(), stdout };
        if (code !== 0 && !opts.allowFail) {
          reject(new Error(`${opts.what ?? bin} ${args.join(' ')} exited ${code}${error?.killed ? ' (killed: timeout)' : ''}: ${r.err.trim()}`));
        } else {
          resolve(r);
        }
      });
    if (opts.input !== undefined) p.stdin?.end(opts.input);
    else p.stdin?.end();
  });
}

export interface ContainerdOptions {
  /** Proxy snapshotters: name → unix socket. */
  snapshotters?: Record<string, string>;
  /** Load the CRI plugin (off by default: the plain tests need none of it). */
  cri?: boolean;
  /** More TOML appended to the config (plugin sections). */
  toml?: string;
  /** The namespace ctr uses unless told otherwise (default: a unique one). */
  namespace?: string;
}

export interface PrivateContainerd {
  dir: string;
  root: string;
  address: string;
  namespace: string;
  /** `ctr --address ADDRESS -n NAMESPACE args…`. */
  ctr(args: string[], opts?: { namespace?: string; input?: Buffer | string; allowFail?: boolean; timeoutMs?: number }): Promise<CmdResult>;
  /** Force-removes every task left in any namespace (their shims would outlive containerd), then SIGTERM (SIGKILL after 15 s). */
  stop(): Promise<void>;
  log(): string;
}

/** The config of a private containerd in `dir`: every path and socket inside it, debug socket private, metrics off. */
export function containerdConfig(dir: string, opts: ContainerdOptions = {}): string {
  const q = (s: string) => JSON.stringify(s);
  const disabled = [
    // Snapshotters that only log why they cannot work here.
    'io.containerd.snapshotter.v1.aufs', 'io.containerd.snapshotter.v1.btrfs', 'io.containerd.snapshotter.v1.zfs',
    'io.containerd.snapshotter.v1.devmapper',
    ...(opts.cri ? [] : ['io.containerd.grpc.v1.cri']),
  ];
  const lines = [
    'version = 2',
    `root = ${q(join(dir, 'root'))}`,
    `state = ${q(join(dir, 'state'))}`,
    `disabled_plugins = [${disabled.map(q).join(', ')}]`,
    '[grpc]',
    `  address = ${q(join(dir, 'containerd.sock'))}`,
    '[ttrpc]',
    `  address = ${q(join(dir, 'containerd.sock.ttrpc'))}`,
    '[debug]',
    `  address = ${q(join(dir, 'debug.sock'))}`,
    '  level = "info"',
    '[metrics]',
    '  address = ""',
    // The opt plugin would otherwise install into /opt/containerd.
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${q(join(dir, 'opt'))}`,
  ];
  for (const [name, socket] of Object.entries(opts.snapshotters ?? {})) {
    lines.push(`[proxy_plugins.${name}]`, '  type = "snapshot"', `  address = ${q(socket)}`);
  }
  if (opts.toml) lines.push(opts.toml);
  return lines.join('\n') + '\n';
}

/** Starts containerd on a config in `dir` and waits until `ctr version` answers (60 s, then fails with its log). */
export async function startContainerd(dir: string, opts: ContainerdOptions = {}): Promise<PrivateContainerd> {
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'config.toml');
  const logFile = join(dir, 'containerd.log');
  const address = join(dir, 'containerd.sock');
  const namespace = opts.namespace ?? uniqueName('ovl2');
  writeFileSync(config, containerdConfig(dir, opts));
  const out = openSync(logFile, 'a');
  const child: ChildProcess = spawn(CONTAINERD, ['--config', config], { stdio: ['ignore', out, out] });
  closeSync(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');

  const ctr: PrivateContainerd['ctr'] = (args, o = {}) =>
    run(CTR, ['--address', address, '-n', o.namespace ?? namespace, ...args], { ...o, what: 'ctr' });

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const nss = (await ctr(['namespaces', 'ls', '-q'], { allowFail: true, timeoutMs: 10_000 })).out.split('\n').filter(Boolean);
    for (const ns of nss) {
      const tasks = (await ctr(['tasks', 'ls', '-q'], { namespace: ns, allowFail: true, timeoutMs: 10_000 })).out.split('\n').filter(Boolean);
      for (const t of tasks) await ctr(['tasks', 'rm', '-f', t], { namespace: ns, allowFail: true, timeoutMs: 10_000 });
    }
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };

  const until = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`containerd exited ${child.exitCode} at start:\n${log().slice(-3000)}`);
    const r = await ctr(['version'], { allowFail: true, timeoutMs: 10_000 });
    if (r.code === 0) break;
    if (Date.now() > until) {
      await stop();
      throw new Error(`containerd did not answer within 60 s:\n${log().slice(-3000)}`);
    }
    await sleep(100);
  }
  return { dir, root: join(dir, 'root'), address, namespace, ctr, stop, log };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Parses ctr's table output (tabwriter columns under a header) into rows of header → cell; empty cells stay ''. */
export function ctrTable(out: string): Record<string, string>[] {
  const [header, ...rows] = out.split('\n').filter((l) => l.trim() !== '');
  if (!header) return [];
  const cols = [...header.matchAll(/\S+/g)].map((m) => ({ name: m[0], at: m.index! }));
  return rows.map((row) => Object.fromEntries(cols.map((c, i) =>
    [c.name, row.slice(c.at, i + 1 < cols.length ? cols[i + 1].at : undefined).trim()])));
}
