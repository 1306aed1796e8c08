// serveSnapshotter: containerd's Snapshots gRPC service (a proxy snapshotter: containerd's
// `[proxy_plugins.NAME] type = "snapshot"`) on a unix socket, over this store. The wire side only:
// messages in, Snapshotter calls, messages or a status out; the semantics are snapshotter.ts's.
//
// gRPC is @grpc/grpc-js, the gRPC project's own pure-JavaScript implementation (no native build, the
// one Node gRPC library maintained by the gRPC team), with @grpc/proto-loader reading this package's
// proto/ files at start: the .proto text is the contract, checked field by field against containerd's.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Grpc from '@grpc/grpc-js';
import type * as ProtoLoader from '@grpc/proto-loader';
import type { Overlay2Driver } from '../driver.js';
import { listenOnSocket, releaseSocket, type SocketBinder } from '../service/socket.js';
import { Snapshotter, SnapshotError, type SnapshotInfo } from './snapshotter.js';
import type { Mount } from './mounts.js';

/** Where containerd's config points `[proxy_plugins.NAME] address` by default. */
export const DEFAULT_SNAPSHOTTER_SOCKET = '/run/overlay2/snapshotter.sock';

export type LogLevel = 'debug' | 'info' | 'error';

export interface SnapshotterOptions {
  /** the unix socket; default /run/overlay2/snapshotter.sock (its directory made 0700 if missing) */
  socket?: string;
  /** how long close() lets calls in flight finish before cutting them (ms); default 5000 */
  graceMs?: number;
  /** 'debug': a line per call; 'info' (default) and 'error': failures only */
  logLevel?: LogLevel;
  /** where log lines go; default stderr */
  log?: (line: string) => void;
  /** read-only trees that may already hold layers (remote layers, searched in order): CVMFS/DUCC's
   *  `.layers/<xx>/<hex>/layerfs` by blob digest, `overlay2 thin make`'s `layers/<hex>` by diffID */
  remoteLayers?: readonly string[];
}

export interface SnapshotterHandle {
  readonly socket: string;
  readonly snapshotter: Snapshotter;
  /** Stops accepting calls, lets calls in flight finish for graceMs then cuts them, removes the socket. */
  close(): Promise<void>;
}

/** containerd's own List sends this many Infos per stream message. */
const LIST_BATCH = 100;

/** NOT_FOUND and ALREADY_EXISTS are answers containerd asks for in its normal flow (Stat of a name
 *  it is about to create, the remote-snapshot handshake): logged with the calls, not as failures. */
const EXPECTED = new Set(['NOT_FOUND', 'ALREADY_EXISTS']);

const KIND_TO_WIRE = { view: 'VIEW', active: 'ACTIVE', committed: 'COMMITTED' } as const;

export async function serveSnapshotter(driver: Overlay2Driver, options: SnapshotterOptions = {}): Promise<SnapshotterHandle> {
  const require = createRequire(import.meta.url);
  const grpc = require('@grpc/grpc-js') as typeof Grpc;
  const protoLoader = require('@grpc/proto-loader') as typeof ProtoLoader;
  const socket = options.socket ?? DEFAULT_SNAPSHOTTER_SOCKET;
  const graceMs = options.graceMs ?? 5000;
  const level = options.logLevel ?? 'info';
  const log = options.log ?? ((line: string) => process.stderr.write(`overlay2 snapshotter: ${line}\n`));

  const protoDir = findProtoDir();
  const definition = protoLoader.loadSync(join(protoDir, 'containerd/services/snapshots/v1/snapshots.proto'), {
    includeDirs: [protoDir], keepCase: false, longs: Number, enums: String, defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    containerd: { services: { snapshots: { v1: { Snapshots: { service: Grpc.ServiceDefinition } } } } };
  };
  const service = pkg.containerd.services.snapshots.v1.Snapshots.service;

  // containerd's GC removes whole images while pulls go on: two of the pool's four threads stay free
  driver.removeWalks = 2;
  const snapshotter = new Snapshotter(driver, { remoteLayers: options.remoteLayers, log: (line) => log(line) });
  let closing = false;
  const inFlight = new Set<Promise<unknown>>();

  const toStatus = (e: unknown): Partial<Grpc.StatusObject> => {
    if (e instanceof SnapshotError) return { code: grpc.status[e.code], details: e.message };
    return { code: grpc.status.INTERNAL, details: `internal error: ${(e as Error)?.message ?? String(e)}` };
  };

  // Called after the reply is handed to gRPC, so a line written never delays it; below debug, a call
  // that succeeded costs no formatting at all.
  const report = (method: string, about: () => string, started: bigint, e?: unknown): void => {
    if (level !== 'debug' && (e === undefined || (e instanceof SnapshotError && EXPECTED.has(e.code)))) return;
    const ms = (Number(process.hrtime.bigint() - started) / 1e6).toFixed(1);
    if (e === undefined) log(`${method} ${about()}: ok (${ms} ms)`);
    else log(`${method} ${about()}: ${e instanceof SnapshotError ? e.code : 'INTERNAL'}: ${(e as Error)?.message ?? String(e)} (${ms} ms)`);
  };

  type Req = Record<string, unknown>;
  const unary = (method: string, about: (r: Req) => string, run: (r: Req) => Promise<unknown> | unknown) =>
    (call: Grpc.ServerUnaryCall<Req, unknown>, callback: Grpc.sendUnaryData<unknown>): void => {
      const started = process.hrtime.bigint();
      const what = () => about(call.request);
      if (closing) {
        callback({ code: grpc.status.UNAVAILABLE, details: 'the snapshotter is shutting down' });
        return;
      }
      const done = (async () => run(call.request))().then(
        (reply) => { callback(null, reply ?? {}); report(method, what, started); },
        (e) => { callback(toStatus(e)); report(method, what, started, e); },
      );
      inFlight.add(done);
      void done.finally(() => inFlight.delete(done));
    };

  const key = (r: Req) => `key=${String(r.key)}`;
  const keyParent = (r: Req) => `key=${String(r.key)} parent=${JSON.stringify(String(r.parent ?? ''))}`;
  const mounts = (m: Mount[]) => ({ mounts: m });
  const labelsOf = (r: Req): Record<string, string> => (r.labels ?? {}) as Record<string, string>;

  const handlers: Grpc.UntypedServiceImplementation = {
    Prepare: unary('Prepare', keyParent, async (r) => mounts(await snapshotter.prepare(String(r.key), String(r.parent ?? ''), labelsOf(r)))),
    View: unary('View', keyParent, async (r) => mounts(await snapshotter.view(String(r.key), String(r.parent ?? ''), labelsOf(r)))),
    Mounts: unary('Mounts', key, async (r) => mounts(await snapshotter.mounts(String(r.key)))),
    Commit: unary('Commit', (r) => `key=${String(r.key)} name=${String(r.name)}`,
      (r) => snapshotter.commit(String(r.name), String(r.key), labelsOf(r), String(r.parent ?? ''))),
    Remove: unary('Remove', key, (r) => snapshotter.remove(String(r.key))),
    Stat: unary('Stat', key, (r) => ({ info: wireInfo(snapshotter.stat(String(r.key))) })),
    Update: unary('Update', (r) => `name=${String((r.info as Req | null)?.name)}`, async (r) => {
      const info = (r.info ?? {}) as Req;
      const paths = ((r.updateMask as { paths?: string[] } | null)?.paths ?? []).map(String);
      return { info: wireInfo(await snapshotter.update({ name: String(info.name ?? ''), labels: labelsOf(info) }, paths)) };
    }),
    Usage: unary('Usage', key, async (r) => snapshotter.usage(String(r.key))),
    Cleanup: unary('Cleanup', () => '', () => snapshotter.cleanup()),
    List: (call: Grpc.ServerWritableStream<Req, unknown>): void => {
      const started = process.hrtime.bigint();
      const filters = ((call.request.filters ?? []) as unknown[]).map(String);
      const what = () => `filters=${JSON.stringify(filters)}`;
      if (closing) {
        call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'the snapshotter is shutting down' });
        return;
      }
      try {
        let batch: ReturnType<typeof wireInfo>[] = [];
        for (const info of snapshotter.list(filters)) {
          batch.push(wireInfo(info));
          if (batch.length === LIST_BATCH) {
            call.write({ info: batch });
            batch = [];
          }
        }
        if (batch.length > 0) call.write({ info: batch });
        call.end();
        report('List', what, started);
      } catch (e) {
        report('List', what, started, e);
        call.emit('error', toStatus(e));
      }
    },
  };

  // channelz (gRPC's introspection service) is not served here: its bookkeeping costs every call
  const server = new grpc.Server({ 'grpc.enable_channelz': 0 });
  server.addService(service, handlers);
  const binder: SocketBinder = {
    who: 'overlay2 snapshotter',
    inUseHint: 'or choose another --socket',
    listen: (path) => new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix:${path}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    }),
    close: async () => { server.forceShutdown(); },
  };
  const ino = await listenOnSocket(binder, socket, 0o700);
  const remote = options.remoteLayers?.length ? `, remote layers from ${options.remoteLayers.join(', ')}` : '';
  log(`serving ${driver.home} on ${socket} (${snapshotter.count} snapshots${remote})`);

  let closed: Promise<void> | null = null;
  async function close(): Promise<void> {
    closing = true;
    const drained = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'grace'>((resolve) => { timer = setTimeout(() => resolve('grace'), graceMs); });
    if ((await Promise.race([drained, graceOver])) === 'grace') server.forceShutdown();
    clearTimeout(timer);
    await Promise.allSettled([...inFlight]);
    await releaseSocket(socket, ino);
  }

  return {
    socket,
    snapshotter,
    close: () => (closed ??= close()),
  };
}

function wireInfo(info: SnapshotInfo) {
  return {
    name: info.name,
    parent: info.parent,
    kind: KIND_TO_WIRE[info.kind],
    createdAt: timestamp(info.created),
    updatedAt: timestamp(info.updated),
    labels: info.labels,
  };
}

function timestamp(d: Date): { seconds: number; nanos: number } {
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

/** This package's proto/ (beside package.json, however deep the running file sits: dist/src/… or the
 *  CLI's bundle in dist/cli/). */
function findProtoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'proto', 'containerd'))) return join(dir, 'proto');
    const up = dirname(dir);
    if (up === dir) throw new SnapshotError('INTERNAL', 'overlay2: the proto/ directory of the package is missing');
    dir = up;
  }
}
