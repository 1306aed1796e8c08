// Progress and abort for a tar stream going out (diff): counts bytes, and entries by parsing the
// stream's headers as it passes (the tar reader is copy-free, so this costs little).
import { Transform, type Readable } from 'node:stream';
import { TarReader } from '../tar/reader.js';
import { ProgressCounter, type Control } from '../progress.js';

export function watchOutput(stream: Readable, control: Control, totalBytes?: number): Readable {
  const counter = new ProgressCounter(control, totalBytes);
  const reader = new TarReader({ entry: () => { counter.entries++; }, data: () => undefined, end: () => undefined });
  let parsing = true;
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      try {
        counter.addBytes(chunk.length);
        if (parsing) {
          try {
            reader.push(chunk);
          } catch {
            parsing = false; // counting is best effort; the bytes still go out
          }
        }
        counter.report();
        cb(null, chunk);
      } catch (e) {
        cb(e as Error);
      }
    },
    flush(cb) {
      try {
        counter.report();
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
  });
  const onAbort = () => out.destroy(control.signal!.reason as Error);
  control.signal?.addEventListener('abort', onAbort, { once: true });
  out.once('close', () => control.signal?.removeEventListener('abort', onAbort));
  stream.once('error', (e) => out.destroy(e));
  out.once('close', () => stream.destroy());
  return stream.pipe(out);
}
