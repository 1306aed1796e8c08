// The CLI's stdout. Merely reading process.stdout loads Node's stream and tty modules (~5 ms of a
// call): `exists` and `create` print nothing and never touch it, and the short text other commands
// print goes out with write(2) on fd 1 — the stream only for what streams (diff's tar), or from the
// first write that would block (a non-blocking stdout), after which everything goes through it so
// the order holds.
import { writeSync } from 'node:fs';

let guarded = false;
/** Set once anything went through process.stdout: from then on all output does. */
let streamed = false;
/** Where write() goes while `overlay2 batch` collects one command's output; null: stdout. */
let sink: ((text: string) => void) | null = null;

/** The reader of our stdout went away (`overlay2 diff X | head`): stop quietly, as cat does. */
export function isBrokenPipe(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'EPIPE';
}

export function stdout(): NodeJS.WriteStream {
  streamed = true;
  const out = process.stdout;
  if (!guarded) {
    guarded = true;
    out.on('error', (e) => {
      if (!isBrokenPipe(e)) throw e;
    });
  }
  return out;
}

export function write(text: string): void {
  if (sink) return sink(text);
  if (!streamed) {
    let rest = Buffer.from(text);
    try {
      while (rest.length > 0) rest = rest.subarray(writeSync(1, rest));
      return;
    } catch (e) {
      // EPIPE propagates (the caller ends quietly); a full non-blocking stdout hands over to the stream
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      stdout().write(rest);
      return;
    }
  }
  stdout().write(text);
}

/** write(), then, once output goes through process.stdout, a wait while its buffer is full: for
 *  output written as it is made (changes), so a long list never piles up in memory. (write(2) on
 *  fd 1 blocks by itself.) */
export async function writeStreaming(text: string): Promise<void> {
  write(text);
  if (sink || !streamed) return;
  const out = process.stdout;
  if (!out.writableNeedDrain) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      out.off('drain', done).off('close', done).off('error', done);
      resolve();
    };
    out.on('drain', done).on('close', done).on('error', done);
  });
}

/** Runs `fn` with write() collected instead of printed; returns what it wrote beside its result. */
export async function collectOutput<T>(fn: () => Promise<T>): Promise<{ result: T; output: string }> {
  let output = '';
  const outer = sink;
  sink = (text) => { output += text; };
  try {
    return { result: await fn(), output };
  } finally {
    sink = outer;
  }
}
