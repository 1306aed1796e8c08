// The stream worker: one thread per Diff or ApplyDiff stream the plugin serves, doing the stream's
// file work (the apply's creates and writes, the export's reads) so the event loop that answers
// every other call never waits behind it. The main thread keeps everything else: the locks, the
// staging dir and its swap, the markers, the tap (progress, tar-split, digests) and the HTTP side.
// Protocol (host.ts is the other end), one message kind per `t`:
//   apply:  in chunk{buf} … end | abort;    out ack{n} per chunk, warning{msg}, done{size} | error{err}
//   export: in credit{n}, stop;             out chunk{buf} (one per credit), end | error{err}
// Each stream's task comes on parentPort (from pool.ts, which keeps finished workers warm) with a
// MessagePort of its own that carries the protocol; once the task's fds are closed the worker posts
// free{} on that port last and closes it (no listener carries over), and waits for the next task.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { IdMappings } from '../idmap.js';
import { loadShim } from '../native/shim.js';
import { toWire } from './errors.js';
import type { ApplyTask, ExportTask, StreamTask } from './tasks.js';

async function runApply(port: MessagePort, t: ApplyTask): Promise<void> {
  const { ExtractSession } = await import('../apply/apply.js');
  let session: InstanceType<typeof ExtractSession> | null = null;
  let finished = false;
  const free = (): void => { port.postMessage({ t: 'free' }); port.close(); };
  const fail = (e: unknown): void => {
    finished = true;
    const err = session ? session.annotate(e) : e;
    try {
      session?.close();
    } catch {
      // the first failure is the one the caller hears about
    }
    session = null;
    port.postMessage({ t: 'error', err: toWire(err) });
    free();
  };
  try {
    session = new ExtractSession(loadShim(), t.root, {
      userxattr: t.userxattr,
      idMappings: new IdMappings({ uidMaps: t.uidMaps, gidMaps: t.gidMaps }),
      layer: t.layer,
      onWarning: (msg) => port.postMessage({ t: 'warning', msg }),
    }, t.mode);
  } catch (e) {
    fail(e);
    return;
  }
  port.on('message', (m: { t: string; buf?: Uint8Array }) => {
    if (finished || !session) return;
    try {
      if (m.t === 'chunk') {
        const buf = m.buf!;
        session.push(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
        port.postMessage({ t: 'ack', n: buf.byteLength });
      } else if (m.t === 'end') {
        session.finish();
        const size = session.size;
        finished = true;
        session.close();
        session = null;
        port.postMessage({ t: 'done', size });
        free();
      } else if (m.t === 'abort') {
        fail(new Error('the apply was aborted'));
      }
    } catch (e) {
      fail(e);
    }
  });
}

async function runExport(port: MessagePort, t: ExportTask): Promise<void> {
  const { exportLayer } = await import('../export/export.js');
  let credit = 0;
  let stopped = false;
  let wake: (() => void) | null = null;
  port.on('message', (m: { t: string; n?: number }) => {
    if (m.t === 'credit') credit += m.n!;
    else if (m.t === 'stop') stopped = true;
    wake?.();
    wake = null;
  });
  const stream = exportLayer(t.upperDir, {
    shim: loadShim(), userxattr: t.userxattr, xattrs: t.xattrs,
    idMappings: new IdMappings({ uidMaps: t.uidMaps, gidMaps: t.gidMaps }),
  });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      while (credit <= 0 && !stopped) await new Promise<void>((r) => { wake = r; });
      if (stopped) break;
      credit--;
      // the export's chunks are fresh and never reused: a whole-buffer one moves without a copy
      const own = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength;
      const buf = own ? new Uint8Array(chunk.buffer) : new Uint8Array(chunk);
      port.postMessage({ t: 'chunk', buf }, [buf.buffer as ArrayBuffer]);
    }
    if (!stopped) port.postMessage({ t: 'end' });
  } catch (e) {
    port.postMessage({ t: 'error', err: toWire(e) });
  } finally {
    if (!stream.closed) {
      const closed = new Promise<void>((r) => stream.once('close', () => r()));
      stream.destroy();
      await closed;
    }
    port.postMessage({ t: 'free' });
    port.close();
  }
}

if (parentPort && (workerData as { pool?: boolean } | undefined)?.pool) {
  parentPort.on('message', (m: { t: string; task?: StreamTask; port?: MessagePort }) => {
    if (m.t !== 'task') return;
    const t = m.task!;
    void (t.task === 'apply' ? runApply(m.port!, t) : runExport(m.port!, t));
  });
}
