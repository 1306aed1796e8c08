// Timing a shell pipeline from the same process that times ours: wall time, and the CPU time of
// every process it ran (bash's `times` reports the children's user and system time).
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';

export interface Timing { ms: number; cpuMs: number }

export function timedShell(script: string, what: string): Timing {
  const t0 = performance.now();
  const r = spawnSync('bash', ['-c', `${script}; times`], { encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${what}: ${r.stderr}`);
  const children = r.stdout.trim().split('\n').pop()!.split(/\s+/).map((t) => {
    const m = /^(\d+)m([\d.]+)s$/.exec(t);
    return m ? Number(m[1]) * 60_000 + Number(m[2]) * 1000 : 0;
  });
  return { ms, cpuMs: children[0]! + children[1]! };
}
