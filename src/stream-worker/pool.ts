// The stream workers' pool: the threads worker.ts runs on, started once and kept warm between
// streams (a thread's start is ~100 ms loaded). host.ts's runners lease one per stream; the plugin
// prewarms one at Init, closes the idle ones at Cleanup, and logs the counts.
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { StreamTask } from './tasks.js';

/** The worker's script: beside this module, or in the CLI's bundle dir (scripts/bundle-cli.mjs
 *  bundles it as stream-worker.cjs, since the bin carries no dist/src). */
function workerUrl(): URL {
  const here = import.meta.url;
  return here.endsWith('.cjs') ? new URL('./stream-worker.cjs', here) : new URL('./worker.js', here);
}

/** Finished workers kept warm for the next stream. */
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
export interface StreamWorkerLease {
  worker: Worker;
  port: MessagePort;
  /** resolves when the task's run is over: freed, or the thread exited */
  over: Promise<void>;
  exited(): boolean;
  /** after `over`: back to the pool if the run ended cleanly and `reuse`, else terminated */
  release(reuse: boolean): Promise<void>;
}

/** A warm worker if one is idle, else a new one, with `task` posted to it. */
export function leaseStreamWorker(task: StreamTask): StreamWorkerLease {
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

export interface StreamWorkerStats {
  /** threads started since the process began (prewarms included) */
  started: number;
  /** streams served by a warm worker */
  reused: number;
  /** warm workers waiting now */
  idle: number;
}

export function streamWorkerStats(): StreamWorkerStats {
  return { started, reused, idle: idle.length };
}

/** Terminates the idle workers and keeps none until the next prewarm (plugin Cleanup, shutdown). */
export async function closeStreamWorkers(): Promise<void> {
  closed = true;
  await Promise.all(idle.splice(0).map((w) => w.terminate()));
}
