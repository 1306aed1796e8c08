// A gRPC client of containerd's Snapshots service, as containerd's proxy snapshotter client calls it:
// the package's own .proto files, @grpc/grpc-js on the unix socket. For tests that reach the
// snapshotter with calls containerd would not make on its own (every error code, bad arguments).
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type * as Grpc from '@grpc/grpc-js';
import type * as ProtoLoader from '@grpc/proto-loader';
import { CLI_BIN } from './cli.js';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js') as typeof Grpc;
const protoLoader = require('@grpc/proto-loader') as typeof ProtoLoader;

export interface WireMount { type: string; source: string; target: string; options: string[] }
export interface WireInfo {
  name: string; parent: string; kind: 'VIEW' | 'ACTIVE' | 'COMMITTED' | 'UNKNOWN';
  createdAt: { seconds: number; nanos: number }; updatedAt: { seconds: number; nanos: number };
  labels: Record<string, string>;
}

/** A failed call: grpc's status code name ('NOT_FOUND') and the details containerd would show. */
export class CallError extends Error {
  constructor(readonly code: string, readonly details: string) {
    super(`${code}: ${details}`);
  }
}

/** Reaching a snapshotter through containerd's own Snapshots service (its grpc socket) rather than
 *  a proxy's socket: containerd picks the snapshotter by the requests' `snapshotter` field and the
 *  namespace by the `containerd-namespace` header. */
export interface ViaContainerd {
  snapshotter: string;
  namespace: string;
}

export class SnapshotsClient {
  private readonly client: Grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  private readonly metadata = new grpc.Metadata();
  private readonly snapshotter: string;

  /** `protoDir`: the proto/ of the package under test (default: this checkout's). */
  constructor(socket: string, protoDir = join(process.cwd(), 'proto'), via?: ViaContainerd) {
    this.snapshotter = via?.snapshotter ?? 'ovl2';
    if (via) this.metadata.set('containerd-namespace', via.namespace);
    const def = protoLoader.loadSync(join(protoDir, 'containerd/services/snapshots/v1/snapshots.proto'), {
      includeDirs: [protoDir], keepCase: false, longs: Number, enums: String, defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      containerd: { services: { snapshots: { v1: { Snapshots: new (addr: string, creds: Grpc.ChannelCredentials) => Grpc.Client } } } };
    };
    const Ctor = pkg.containerd.services.snapshots.v1.Snapshots;
    this.client = new Ctor(`unix:${socket}`, grpc.credentials.createInsecure()) as SnapshotsClient['client'];
  }

  private call<T>(method: string, request: object): Promise<T> {
    return new Promise((resolve, reject) => {
      const fn = this.client[method]!.bind(this.client) as (r: object, md: Grpc.Metadata, cb: (e: Grpc.ServiceError | null, v: T) => void) => void;
      fn({ snapshotter: this.snapshotter, ...request }, this.metadata, (e, v) => {
        if (e) reject(new CallError(grpc.status[e.code] ?? String(e.code), e.details));
        else resolve(v);
      });
    });
  }

  async prepare(key: string, parent = '', labels: Record<string, string> = {}): Promise<WireMount[]> {
    return (await this.call<{ mounts: WireMount[] }>('Prepare', { key, parent, labels })).mounts;
  }
  async view(key: string, parent = '', labels: Record<string, string> = {}): Promise<WireMount[]> {
    return (await this.call<{ mounts: WireMount[] }>('View', { key, parent, labels })).mounts;
  }
  async mounts(key: string): Promise<WireMount[]> {
    return (await this.call<{ mounts: WireMount[] }>('Mounts', { key })).mounts;
  }
  async commit(name: string, key: string, labels: Record<string, string> = {}, parent = ''): Promise<void> {
    await this.call('Commit', { name, key, labels, parent });
  }
  async remove(key: string): Promise<void> {
    await this.call('Remove', { key });
  }
  async stat(key: string): Promise<WireInfo> {
    return (await this.call<{ info: WireInfo }>('Stat', { key })).info;
  }
  async update(name: string, labels: Record<string, string>, paths: string[]): Promise<WireInfo> {
    return (await this.call<{ info: WireInfo }>('Update', { info: { name, labels }, updateMask: { paths } })).info;
  }
  async usage(key: string): Promise<{ size: number; inodes: number }> {
    return this.call('Usage', { key });
  }
  async cleanup(): Promise<void> {
    await this.call('Cleanup', {});
  }
  /** Every Info of the List stream, in the order sent, with the number of stream messages. */
  list(filters: string[] = []): Promise<{ infos: WireInfo[]; messages: number }> {
    return new Promise((resolve, reject) => {
      const stream = (this.client.List as (r: object, md: Grpc.Metadata) => Grpc.ClientReadableStream<{ info: WireInfo[] }>)(
        { snapshotter: this.snapshotter, filters }, this.metadata);
      const infos: WireInfo[] = [];
      let messages = 0;
      stream.on('data', (m: { info: WireInfo[] }) => { messages++; infos.push(...m.info); });
      stream.on('error', (e: Grpc.ServiceError) => reject(new CallError(grpc.status[e.code] ?? String(e.code), e.details)));
      stream.on('end', () => resolve({ infos, messages }));
    });
  }
  close(): void {
    this.client.close();
  }
}

/** The error a call failed with (throws if it succeeded). */
export async function failure(p: Promise<unknown>): Promise<CallError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CallError) return e;
    throw e;
  }
  throw new Error('the call succeeded; expected a failure');
}

export interface RunningSnapshotter {
  child: ChildProcess;
  socket: string;
  /** everything it wrote to stderr so far */
  stderr(): string;
  /** SIGTERM (or `signal`), resolves with the exit code */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `overlay2 --home HOME snapshotter --socket SOCKET` as a user starts it; resolves once the socket answers.
 *  `bin`: another build's CLI (a bench's baseline). */
export async function startSnapshotter(home: string, socket: string, extra: string[] = [], bin = CLI_BIN): Promise<RunningSnapshotter> {
  const child = spawn(process.execPath, [bin, '--home', home, 'snapshotter', '--socket', socket, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the snapshotter exited ${child.exitCode}: ${err}`);
    if (existsSync(socket) && /serving /.test(err)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the snapshotter did not start: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    socket,
    stderr: () => err,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
