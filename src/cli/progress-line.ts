// The CLI's progress line on stderr: bytes, entries, rate and (with a known total) percent and ETA.
// Shown when stderr is a terminal (redrawn in place, at most ~10 times a second), or forced with
// --progress (then one line a second where stderr is not a terminal); --no-progress/--quiet: never.
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
  /** Draws the final state and ends the line. */
  done(): void;
}

export function progressLine(label: string, mode: ProgressMode, out: NodeJS.WriteStream = process.stderr): ProgressLine {
  const tty = out.isTTY === true;
  if (mode === 'off' || (mode === 'auto' && !tty)) return { done: () => undefined };
  const started = Date.now();
  const interval = tty ? 100 : 1000;
  let last = 0;
  let latest: Progress | null = null;
  let drawn = false;
  const draw = (final: boolean): void => {
    if (!latest) return;
    const line = format(label, latest, (Date.now() - started) / 1000, final);
    if (tty) out.write(`\r${line}\x1b[K${final ? '\n' : ''}`);
    else out.write(`${line}\n`);
    drawn = true;
  };
  return {
    onProgress: (p) => {
      latest = p;
      const now = Date.now();
      if (now - last < interval) return;
      last = now;
      draw(false);
    },
    done: () => {
      if (latest) draw(true);
      else if (drawn && tty) out.write('\n');
    },
  };
}

export function format(label: string, p: Progress, seconds: number, final: boolean): string {
  const rate = seconds > 0 ? p.bytes / seconds : 0;
  const parts = [label, p.totalBytes ? `${size(p.bytes)} / ${size(p.totalBytes)} (${Math.min(100, Math.floor((p.bytes / p.totalBytes) * 100))}%)` : size(p.bytes)];
  parts.push(`${p.entries} entries`, `${size(rate)}/s`);
  if (final) parts.push(`in ${clock(seconds)}`);
  else if (p.totalBytes && rate > 0) parts.push(`ETA ${clock(Math.max(0, (p.totalBytes - p.bytes) / rate))}`);
  return parts.join('  ');
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
