// CPU time of this process's threads (utime + stime from /proc/self/task/*/stat, 10 ms ticks): the
// main thread apart from all others (libuv pool, V8 helpers).
import * as fs from 'node:fs';

export interface ThreadCpu { mainMs: number; otherMs: number; byTid: Map<number, number> }

const TICK_MS = 10; // USER_HZ is 100 on Linux

export function threadCpu(since?: ThreadCpu): ThreadCpu {
  const byTid = new Map<number, number>();
  let mainMs = 0, otherMs = 0;
  for (const t of fs.readdirSync('/proc/self/task')) {
    let stat: string;
    try { stat = fs.readFileSync(`/proc/self/task/${t}/stat`, 'utf8'); } catch { continue; }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from #3 (state) on
    const ms = (Number(f[11]) + Number(f[12])) * TICK_MS;          // #14 utime, #15 stime
    const tid = Number(t);
    byTid.set(tid, ms);
    const d = ms - (since?.byTid.get(tid) ?? 0);
    if (tid === process.pid) mainMs += d;
    else otherMs += d;
  }
  return { mainMs, otherMs, byTid };
}
