// The main thread's end of the stream worker (worker.ts): an apply or an export run on a thread of
// its own, its bytes handed over as transferred chunks with a bound on how many are in flight.
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { Readable } from 'node:stream';
import type { ExportOptions } from '../export/options.js';
import { feed } from '../tar/input.js';
import { TarReader, type TarSink } from '../tar/reader.js';
import { fromWire, type WireError } from './errors.js';
import type { ApplyTask, ExportTask, StreamTask } from './tasks.js';
import type { ApplyTap } from '../apply/tap.js';
import type { IdMappings } from '../idmap.js';

/** What extractInWorker reads of apply.ts's ApplyOptions (named here, not imported: apply.ts
 *  imports this module). */
interface WorkerApplyOptions {
  userxattr: boolean;
  idMappings: IdMappings;
  layer?: string;
  tap?: ApplyTap;
  onWarning?: (msg: string) => void;
}
type ApplyInput = Readable | AsyncIterable<Uint8Array>;

/** Input bytes handed to the worker and not yet applied: the read of the body pauses past this. */
const APPLY_IN_FLIGHT = 4 << 20;
/** Export chunks (1 MiB each) the worker may send ahead of what the response took. */
const EXPORT_AHEAD = 2;

/** The worker's script: beside this module, or in the CLI's bundle dir (scripts/bundle-cli.mjs
 *  bundles it as stream-worker.cjs, since the bin carries no dist/src). */
function workerUrl(): URL {
  const here = import.meta.url;
  return here.endsWith('.cjs') ? new URL('./stream-worker.cjs', here) : new URL('./worker.js', here);
}

/** Finished workers kept warm for the next stream (a thread's start is ~100 ms loaded). */
const MAX_IDLE = 2;
const idle: Worker[] = [];
let closed = false;
let started = 0;
let reused = 0;

function spawn(): Worker {
  // trackUnmanagedFds off: the apply closes with fs.closeSync the fds the shim opened (openat2), which
  // a tracking worker warns about on every close. --input-type (a parent run with -e) is refused by
  // a worker started from a file.
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
  const w = new Worker(workerUrl(), { workerData: { pool: true }, trackUnmanagedFds: false, execArgv });
  started++;
  // an idle worker that dies leaves the pool (and its error never reaches the process)
  w.on('error', () => {});
  w.once('exit', () => { const i = idle.indexOf(w); if (i >= 0) idle.splice(i, 1); });
  return w;
}

/** One stream's hold on a worker: the task's port, and the end of its run on the worker (free{}
 *  posted once its fds are closed, or the thread gone). */
interface Lease {
  worker: Worker;
  port: MessagePort;
  /** resolves when the task's run is over: freed, or the thread exited */
  over: Promise<void>;
  exited(): boolean;
  /** after `over`: back to the pool if the run ended cleanly and `reuse`, else terminated */
  release(reuse: boolean): Promise<void>;
}

function lease(task: StreamTask): Lease {
  const warm = idle.pop();
  if (warm) reused++;
  const worker = warm ?? spawn();
  worker.ref();
  const { port1, port2 } = new MessageChannel();
  let gone = false;
  let freed = false;
  let onOver!: () => void;
  const over = new Promise<void>((r) => { onOver = r; });
  const onExit = (): void => { gone = true; onOver(); };
  worker.once('exit', onExit);
  port1.on('message', (m: { t: string }) => { if (m.t === 'free') { freed = true; onOver(); } });
  worker.postMessage({ t: 'task', task, port: port2 }, [port2]);
  return {
    worker, port: port1, over, exited: () => gone,
    release: async (reuse) => {
      worker.off('exit', onExit);
      port1.close();
      if (gone) return;
      if (reuse && freed && !closed && idle.length < MAX_IDLE) {
        worker.unref();
        idle.push(worker);
      } else {
        await worker.terminate();
      }
    },
  };
}

/** Starts one worker ahead (none if one is idle already): the plugin's first stream finds it warm. */
export function prewarmStreamWorker(): void {
  closed = false;
  if (idle.length > 0) return;
  const w = spawn();
  w.unref();
  idle.push(w);
}

/** The pool's counts (the plugin's debug log shows them per stream). */
export function streamWorkerStats(): { started: number; reused: number; idle: number } {
  return { started, reused, idle: idle.length };
}

/** Terminates the idle workers and keeps none until the next prewarm (plugin Cleanup, shutdown). */
export async function closeStreamWorkers(): Promise<void> {
  closed = true;
  await Promise.all(idle.splice(0).map((w) => w.terminate()));
}

const NULL_SINK: TarSink = { entry() {}, data() {}, end() {} };

/**
 * extract() on a worker: the event loop reads and decompresses the input, runs the tap over a shadow
 * parse of it (the tap's checks, progress and records stay where they were: on this thread), and
 * hands each chunk over; the worker creates the tree. Resolves or rejects only once the worker has
 * exited, so nothing writes into the tree after the caller goes on to swap or remove it.
 */
export async function extractInWorker(root: string, tar: ApplyInput, opts: WorkerApplyOptions, mode: 'layer' | 'mount'): Promise<number> {
  const task: ApplyTask = {
    task: 'apply', root, mode, layer: opts.layer, userxattr: opts.userxattr,
    uidMaps: [...opts.idMappings.uidMaps], gidMaps: [...opts.idMappings.gidMaps],
  };
  const l = lease(task);
  const port = l.port;
  const tap = opts.tap;
  const shadow = tap ? new TarReader(tap.wrap(NULL_SINK)) : null;
  let inFlight = 0;
  let workerError: Error | null = null;
  /** The extractor's running count: negative after an in-place apply that removed more than it wrote. */
  let size: number | null = null;
  let wake: (() => void) | null = null;
  const poke = (): void => { wake?.(); wake = null; };
  let gone = false;
  const exited = l.over.then(() => { gone = true; poke(); });
  const onError = (e: Error): void => { workerError ??= e; poke(); };
  l.worker.on('error', onError);
  port.on('message', (m: { t: string; n?: number; msg?: string; size?: number; err?: WireError }) => {
    if (m.t === 'ack') inFlight -= m.n!;
    else if (m.t === 'warning') opts.onWarning?.(m.msg!);
    else if (m.t === 'done') size = m.size!;
    else if (m.t === 'error') workerError ??= fromWire(m.err!);
    poke();
  });
  const wait = (): Promise<void> => new Promise((r) => { wake = r; });
  const stopIfFailed = (): void => {
    if (workerError) throw workerError;
    if (gone) throw new Error('the stream worker exited before the apply ended');
  };
  try {
    await feed(tar, async (chunk) => {
      stopIfFailed();
      if (tap) tap.before(chunk);
      shadow?.push(chunk);
      // a copy: the caller may reuse the chunk, and the worker owns what it is sent
      const buf = new Uint8Array(chunk);
      port.postMessage({ t: 'chunk', buf }, [buf.buffer]);
      inFlight += buf.byteLength;
      tap?.after(chunk);
      while (inFlight > APPLY_IN_FLIGHT && !workerError && !gone) await wait();
      stopIfFailed();
    }, tap ? (n) => tap.input(n) : undefined);
    shadow?.finish();
    port.postMessage({ t: 'end' });
    while (size === null && !workerError && !gone) await wait();
    if (workerError) throw workerError;
    // done, then exit: the exit may come in before this thread looked at the size
    if (size === null) throw new Error('the stream worker exited before the apply ended');
    await exited;
    l.worker.off('error', onError);
    await l.release(true);
    tap?.finish();
    return size as number;
  } catch (e) {
    // A failure the worker met on its own is at an entry no later than this thread's (the shadow
    // parse runs ahead of it): it is the one reported. Taken before the abort, whose echo is not.
    const own = workerError;
    if (!gone) port.postMessage({ t: 'abort' });
    await exited;
    l.worker.off('error', onError);
    await l.release(false);
    throw own ?? e;
  }
}

/** exportLayer() on a worker: the Readable the caller pipes is fed chunks the worker reads, at most
 *  EXPORT_AHEAD ahead of what was taken from it; destroying it stops the worker. */
export function exportInWorker(upperDir: string, opts: ExportOptions): Readable {
  const task: ExportTask = {
    task: 'export', upperDir, userxattr: opts.userxattr, xattrs: opts.xattrs ?? 'docker',
    uidMaps: [...opts.idMappings.uidMaps], gidMaps: [...opts.idMappings.gidMaps],
  };
  const l = lease(task);
  const port = l.port;
  let granted = 0;
  let gone = false;
  let ended = false;
  let failed = false;
  const exited = l.over.then(() => { gone = true; });
  // the run is over (freed or exited): back to the pool only after the worker sent the whole layer
  const released = exited.then(() => l.release(ended && !failed && !l.exited()));
  const stream = new Readable({
    highWaterMark: 1 << 20,
    read() {
      if (!gone && granted < EXPORT_AHEAD) {
        port.postMessage({ t: 'credit', n: EXPORT_AHEAD - granted });
        granted = EXPORT_AHEAD;
      }
    },
    destroy(err, callback) {
      if (!gone) port.postMessage({ t: 'stop' });
      // the worker closes its fds before it is free: the caller hears of the end after that
      void released.then(() => callback(err), () => callback(err));
    },
  });
  port.on('message', (m: { t: string; buf?: Uint8Array; err?: WireError }) => {
    if (m.t === 'chunk') {
      granted--;
      stream.push(Buffer.from(m.buf!.buffer, m.buf!.byteOffset, m.buf!.byteLength));
    } else if (m.t === 'end') {
      ended = true;
      stream.push(null);
    } else if (m.t === 'error') {
      failed = true;
      stream.destroy(fromWire(m.err!));
    }
  });
  const onError = (e: Error): void => { failed = true; stream.destroy(e); };
  l.worker.on('error', onError);
  void released.then(() => l.worker.off('error', onError), () => {});
  void exited.then(() => {
    if (!ended && !stream.destroyed) stream.destroy(new Error('the stream worker exited before the export ended'));
  });
  return stream;
}
