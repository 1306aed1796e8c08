// Peak resident memory of a process tree: runs a command and samples VmHWM (the kernel's own
// high-water mark) of it and every descendant every 10 ms. VmHWM only grows, so a sample taken
// shortly before a process exits is its peak; a decoder that lives under 10 ms is reported as 0.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';

export interface PeakRss {
  /** peak RSS of the command's own process, MiB */
  selfMiB: number;
  /** the largest peak among its descendants (a decoder command), MiB */
  childMiB: number;
  exitCode: number | null;
  stdout: string;
  /** with opts.stderr 'pipe': what it wrote there (else it went to ours) */
  stderr: string;
  ms: number;
}

function hwmKiB(pid: number): number {
  try {
    return Number(/^VmHWM:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function descendants(pid: number): number[] {
  const out: number[] = [];
  const visit = (p: number) => {
    let tasks: string[] = [];
    try { tasks = readdirSync(`/proc/${p}/task`); } catch { return; }
    for (const t of tasks) {
      let kids: string[] = [];
      try { kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean); } catch { /* gone */ }
      for (const k of kids) {
        out.push(Number(k));
        visit(Number(k));
      }
    }
  };
  visit(pid);
  return out;
}

export interface PeakRssOptions {
  stdinFile?: string;
  shell?: boolean;
  /** stdout goes to this file (a big output is not held by the bench); PeakRss.stdout is then '' */
  stdoutFile?: string;
  stderr?: 'inherit' | 'pipe';
}

export async function peakRss(cmd: string, args: string[], opts: PeakRssOptions = {}): Promise<PeakRss> {
  const t0 = Date.now();
  const outFd = opts.stdoutFile ? openSync(opts.stdoutFile, 'w') : null;
  const child = spawn(cmd, args, { stdio: ['ignore', outFd ?? 'pipe', opts.stderr ?? 'inherit'] });
  if (outFd !== null) closeSync(outFd);
  let stdout = '', stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  let self = 0, kids = 0;
  const sample = () => {
    self = Math.max(self, hwmKiB(child.pid!));
    for (const k of descendants(child.pid!)) kids = Math.max(kids, hwmKiB(k));
  };
  const timer = setInterval(sample, 10);
  const exitCode = await new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  clearInterval(timer);
  const m = /"hwmKiB":(\d+)/.exec(stdout);
  if (m) self = Math.max(self, Number(m[1])); // the process's own last word on its peak
  return { selfMiB: self / 1024, childMiB: kids / 1024, exitCode, stdout, stderr, ms: Date.now() - t0 };
}
