// The CLI's stdout, touched only by commands that print: merely reading process.stdout loads Node's
// stream and tty modules, a cost `overlay2 exists` (which prints nothing) should not pay.
let guarded = false;
/** Where write() goes while `overlay2 batch` collects one command's output; null: stdout. */
let sink: ((text: string) => void) | null = null;

/** The reader of our stdout went away (`overlay2 diff X | head`): stop quietly, as cat does. */
export function isBrokenPipe(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'EPIPE';
}

export function stdout(): NodeJS.WriteStream {
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
  if (sink) sink(text);
  else stdout().write(text);
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
