// The CLI's progress line on stderr, one vocabulary for apply, diff, load and save: bytes (with a
// known total: "of TOTAL", percent and ETA), entries (tar entries: the files of the layers), rate.
// Shown when stderr is a terminal (redrawn in place, at most ~10 times a second), or forced with
// --progress (then one line a second where stderr is not a terminal); --no-progress/--quiet: never.
// The last line says "in M:SS" only for work that completed; interrupted work ends the line as it was.
import type { Progress } from '../progress.js';

export type ProgressMode = 'auto' | 'on' | 'off';

export function progressMode(values: Record<string, unknown>): ProgressMode {
  if (values.quiet || values['no-progress']) return 'off';
  if (values.progress) return 'on';
  return 'auto';
}

/** The parseArgs options every long command takes. */
export const PROGRESS_OPTIONS = {
  progress: { type: 'boolean' },
  'no-progress': { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
} as const;

export interface ProgressLine {
  onProgress?: (p: Progress) => void;
  /** Draws the final state (with the time it took) and ends the line. */
  done(): void;
  /** Ends the line where it stands: the work did not complete, so no final state is drawn. */
  abandon(): void;
}

export function progressLine(label: string, mode: ProgressMode, out: NodeJS.WriteStream = process.stderr): ProgressLine {
  const tty = out.isTTY === true;
  if (mode === 'off' || (mode === 'auto' && !tty)) return { done: () => undefined, abandon: () => undefined };
  const started = Date.now();
  const interval = tty ? 100 : 1000;
  let last = 0;
  let latest: Progress | null = null;
  let drawn = false;
  // The rate (and so the ETA) is measured from the first bytes, not from the start: save may read
  // a whole local layer for its diffID before it writes anything, which made the first ETA absurd.
  let flowing: { at: number; bytes: number } | null = null;
  const draw = (final: boolean): void => {
    if (!latest) return;
    const now = Date.now();
    const rate = flowing && now - flowing.at >= MEASURE_MS ? ((latest.bytes - flowing.bytes) * 1000) / (now - flowing.at) : null;
    const line = format(label, latest, (now - started) / 1000, final, final ? latest.bytes / Math.max(0.001, (now - started) / 1000) : rate);
    if (tty) out.write(`\r${line}\x1b[K${final ? '\n' : ''}`);
    else out.write(`${line}\n`);
    drawn = true;
  };
  return {
    onProgress: (p) => {
      latest = p;
      const now = Date.now();
      if (flowing === null && p.bytes > 0) flowing = { at: now, bytes: p.bytes };
      if (now - last < interval) return;
      last = now;
      draw(false);
    },
    done: () => {
      if (latest) draw(true);
      else if (drawn && tty) out.write('\n');
    },
    abandon: () => {
      if (drawn && tty) out.write('\n');
    },
  };
}

/** How long the rate is measured before a rate and an ETA are shown. */
const MEASURE_MS = 1000;

/** One line: `apply  12.0 MiB of 48.0 MiB (25%)  310 entries  6.0 MiB/s  ETA 0:06`; the final one
 *  ends `in 0:08` instead of the ETA. `rate` null: not measured yet (no rate, no ETA). */
export function format(label: string, p: Progress, seconds: number, final: boolean, rate: number | null): string {
  const total = p.totalBytes;
  const parts = [label, total ? `${size(p.bytes)} of ${size(total)} (${percent(p.bytes, total, final)}%)` : size(p.bytes)];
  parts.push(`${p.entries} ${p.entries === 1 ? 'entry' : 'entries'}`);
  if (rate !== null) parts.push(`${size(rate)}/s`);
  if (final) parts.push(`in ${clock(seconds)}`);
  else if (total && rate !== null && rate > 0) parts.push(`ETA ${clock(Math.max(0, (total - p.bytes) / rate))}`);
  return parts.join('  ');
}

/** Whole percent, rounded down (99% until the last byte); 100 once everything is there or the work completed. */
function percent(bytes: number, total: number, final: boolean): number {
  if (final || bytes >= total) return 100;
  return Math.min(99, Math.floor((bytes / total) * 100));
}

function size(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

function clock(s: number): string {
  const t = Math.round(s);
  const m = Math.floor(t / 60);
  return `${m}:${String(t % 60).padStart(2, '0')}`;
}
