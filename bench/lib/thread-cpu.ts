// CPU time of this process's threads, from /proc/self/task/*/schedstat (nanoseconds on the CPU):
// the main JS thread apart from the libuv pool threads, so a bench can show the critical path. On
// a quiet 2-core machine wall time is about max(main, pool threads' busiest, all / 2): a split that
// halves the total CPU but leaves one thread with all of it gains nothing.
import { readFileSync, readdirSync } from 'node:fs';

export type ThreadTimes = Map<number, { comm: string; ns: number }>;

export function threadTimes(): ThreadTimes {
  const out: ThreadTimes = new Map();
  for (const t of readdirSync('/proc/self/task')) {
    try {
      const ns = Number(readFileSync(`/proc/self/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      out.set(Number(t), { comm: readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim(), ns });
    } catch { /* the thread ended */ }
  }
  return out;
}

export interface ThreadCpu {
  mainMs: number;    // the JS thread
  poolMs: number;    // every libuv pool thread together
  poolMaxMs: number; // the busiest pool thread
  otherMs: number;   // V8's GC/compiler helpers and the rest
}

export function threadCpuSince(before: ThreadTimes, after: ThreadTimes = threadTimes()): ThreadCpu {
  const r: ThreadCpu = { mainMs: 0, poolMs: 0, poolMaxMs: 0, otherMs: 0 };
  for (const [tid, a] of after) {
    const ms = (a.ns - (before.get(tid)?.ns ?? 0)) / 1e6;
    if (tid === process.pid) r.mainMs += ms;
    else if (a.comm.startsWith('libuv-worker')) {
      r.poolMs += ms;
      r.poolMaxMs = Math.max(r.poolMaxMs, ms);
    } else r.otherMs += ms;
  }
  return r;
}

/** "main / pool (busiest)" in ms for a table cell. */
export function fmtThreads(t: ThreadCpu): string {
  return `${t.mainMs.toFixed(0)} / ${t.poolMs.toFixed(0)} (${t.poolMaxMs.toFixed(0)})`;
}
