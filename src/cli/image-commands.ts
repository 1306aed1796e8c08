// The CLI's image commands (load, save) and the progress/interrupt wiring apply and diff share.
import type { ImageSource } from '../image/load.js';
import type { Control } from '../progress.js';
import { progressLine, progressMode, type ProgressMode } from './progress-line.js';
import { Interrupted, type CommandContext } from './command.js';
import { write } from './output.js';
import { checkOutputFile, statInput } from '../image/file-paths.js';

/** Runs `fn` with a progress line and an AbortSignal that Ctrl-C (SIGINT) and SIGTERM fire, so an
 *  interrupted load/save/apply cleans up (no half layer, no partial file) before the process ends
 *  — with 128 + the signal's number, as a shell reports a process the signal killed, and without
 *  the progress line's completion figures (the work did not complete). */
export async function withControl<T>(label: string, mode: ProgressMode, fn: (control: Control) => Promise<T>): Promise<T> {
  const line = progressLine(label, mode);
  const ac = new AbortController();
  let caught: Interrupted | null = null;
  const stop = (signal: 'SIGINT' | 'SIGTERM') => {
    caught ??= new Interrupted(label, signal);
    ac.abort(caught);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const r = await fn({ onProgress: line.onProgress, signal: ac.signal });
    line.done();
    return r;
  } catch (e) {
    line.abandon();
    // whatever the operation rejected with on its way out, the signal is why it stopped
    throw caught ?? e;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** `overlay2 load FILE|DIR|-`: one line per image, "<top layer id> <config digest>"; --json: an array of LoadResult. */
export async function load({ args: [source], values, open }: CommandContext): Promise<number> {
  if (source !== '-') statInput(source!, 'source'); // a missing archive is one line, before the home is touched
  const driver = await open();
  const results = await withControl('load', progressMode(values), (control) => {
    // an interrupt must not wait for the next chunk of a pipe that is slow or idle
    if (source === '-') control.signal?.addEventListener('abort', () => process.stdin.destroy(control.signal!.reason as Error), { once: true });
    return driver.load(source === '-' ? process.stdin : (source as ImageSource), control);
  });
  if (values.json) write(JSON.stringify(results, null, 2) + '\n');
  else write(results.map((r) => `${r.top} ${r.configDigest}\n`).join(''));
  return 0;
}

/** `overlay2 save TOP -o FILE [--format docker|oci] [--tag NAME]...`: prints the config digest. */
export async function save({ args: [top], values, open, usage }: CommandContext): Promise<number> {
  if (typeof values.output !== 'string') usage('needs -o FILE');
  const format = ((values.format as string | undefined) ?? 'docker') as 'docker' | 'oci';
  if (format !== 'docker' && format !== 'oci') usage(`--format must be docker or oci, not ${JSON.stringify(format)}`);
  checkOutputFile(values.output as string);
  const driver = await open();
  const r = await withControl('save', progressMode(values), (control) =>
    driver.save(top!, values.output as string, { ...control, format, tags: (values.tag as string[] | undefined) ?? [] }));
  if (values.json) write(JSON.stringify(r, null, 2) + '\n');
  else write(`${r.configDigest}\n`);
  return 0;
}
