// The CLI's image commands (load, save) and the progress/interrupt wiring apply and diff share.
// Each handler takes parsed values so any argument parser can call it.
import type { Overlay2Driver } from '../driver.js';
import type { ImageSource } from '../image/load.js';
import type { Control } from '../progress.js';
import { progressLine, type ProgressMode } from './progress-line.js';

/** Runs `fn` with a progress line and an AbortSignal that Ctrl-C (SIGINT) and SIGTERM fire, so an
 *  interrupted load/save/apply cleans up (no half layer, no partial file) before the process ends. */
export async function withControl<T>(label: string, mode: ProgressMode, fn: (control: Control) => Promise<T>): Promise<T> {
  const line = progressLine(label, mode);
  const ac = new AbortController();
  const stop = () => ac.abort(new Error(`overlay2: ${label} interrupted`));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const r = await fn({ onProgress: line.onProgress, signal: ac.signal });
    line.done();
    return r;
  } catch (e) {
    line.done();
    throw e;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

export interface LoadArgs {
  /** a path, or stdin ('-') */
  source: ImageSource;
  json: boolean;
  progress: ProgressMode;
}

/** `overlay2 load FILE|DIR|-`: one line per image, "<top layer id> <config digest>"; --json: an array of LoadResult. */
export async function loadCommand(driver: Overlay2Driver, args: LoadArgs): Promise<number> {
  const results = await withControl('load', args.progress, (control) => driver.load(args.source, control));
  if (args.json) console.log(JSON.stringify(results, null, 2));
  else for (const r of results) console.log(`${r.top} ${r.configDigest}`);
  return 0;
}

export interface SaveArgs {
  top: string;
  output: string;
  format: string;
  tags: string[];
  json: boolean;
  progress: ProgressMode;
}

/** `overlay2 save TOP -o FILE [--format docker|oci] [--tag NAME]...`: prints the config digest. */
export async function saveCommand(driver: Overlay2Driver, args: SaveArgs): Promise<number> {
  const r = await withControl('save', args.progress, (control) =>
    driver.save(args.top, args.output, { ...control, format: args.format as 'docker' | 'oci', tags: args.tags }));
  if (args.json) console.log(JSON.stringify(r, null, 2));
  else console.log(r.configDigest);
  return 0;
}
