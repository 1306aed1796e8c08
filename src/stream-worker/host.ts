// The main thread's end of the stream worker (worker.ts): an apply or an export run on a thread of
// its own (leased from pool.ts), its bytes handed over as transferred chunks with a bound on how
// many are in flight.
import { Readable } from 'node:stream';
import type { ExportOptions } from '../export/options.js';
import { feed } from '../tar/input.js';
import { TarReader, type TarSink } from '../tar/reader.js';
import { fromWire, type WireError } from './errors.js';
import { leaseStreamWorker } from './pool.js';
import type { ApplyTask, ExportTask } from './tasks.js';
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

const NULL_SINK: TarSink = { entry() {}, data() {}, end() {} };

/**
 * extract() on a worker: the event loop reads and decompresses the input, runs the tap over a shadow
 * parse of it (the tap's checks, progress and records stay where they were: on this thread), and
 * hands each chunk over; the worker creates the tree. Resolves or rejects only once the worker's run
 * is over (its fds closed, or the thread gone), so nothing writes into the tree after the caller goes
 * on to swap or remove it.
 */
export async function extractInWorker(root: string, tar: ApplyInput, opts: WorkerApplyOptions, mode: 'layer' | 'mount'): Promise<number> {
  const task: ApplyTask = {
    task: 'apply', root, mode, layer: opts.layer, userxattr: opts.userxattr,
    uidMaps: [...opts.idMappings.uidMaps], gidMaps: [...opts.idMappings.gidMaps],
  };
  const l = leaseStreamWorker(task);
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
  const l = leaseStreamWorker(task);
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
