// CPU time of this process's threads, from /proc/self/task/*/schedstat (nanoseconds on the CPU):
// the main JS thread apart from the others, so a bench can show the critical path. On a quiet
// 2-core machine wall time is about max(main, busiest other thread, all / 2): a split that halves
// the total CPU but leaves one thread with all of it gains nothing. Node names every thread "node"
// and starts libuv's pool early (the ES module loader reads files on it), so the pool threads are
// not told apart from V8's helpers: "others" are both, and during a scan the pool's work is nearly
// all of it (the busiest of them is a pool thread).
import { readFileSync, readdirSync } from 'node:fs';

export type ThreadTimes = Map<number, number>;

export function threadTimes(): ThreadTimes {
  const out: ThreadTimes = new Map();
  for (const t of readdirSync('/proc/self/task')) {
    try {
      out.set(Number(t), Number(readFileSync(`/proc/self/task/${t}/schedstat`, 'utf8').split(' ')[0]));
    } catch { /* the thread ended */ }
  }
  return out;
}

export interface ThreadCpu {
  mainMs: number;    // the JS thread
  poolMs: number;    // every other thread together (libuv's pool, V8's helpers)
  poolMaxMs: number; // the busiest other thread
}

export function threadCpuSince(before: ThreadTimes, after: ThreadTimes = threadTimes()): ThreadCpu {
  const r: ThreadCpu = { mainMs: 0, poolMs: 0, poolMaxMs: 0 };
  for (const [tid, ns] of after) {
    const ms = (ns - (before.get(tid) ?? 0)) / 1e6;
    if (tid === process.pid) r.mainMs += ms;
    else {
      r.poolMs += ms;
      r.poolMaxMs = Math.max(r.poolMaxMs, ms);
    }
  }
  return r;
}

/** "main / others (busiest)" in ms for a table cell. */
export function fmtThreads(t: ThreadCpu): string {
  return `${t.mainMs.toFixed(0)} / ${t.poolMs.toFixed(0)} (${t.poolMaxMs.toFixed(0)})`;
}
