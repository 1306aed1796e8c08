// Preloaded into a service process by bench/plugin-memory.ts (`node --require THIS`) to
// tell JS heap growth from native growth without touching the service's code. It acts only on the
// main thread (worker threads inherit execArgv, so they load it too) and only when
// OVERLAY2_MEMORY_PROBE names a directory:
//   SIGWINCH  full GC (twice: the second frees what the first's weak callbacks released), then one
//             JSON line appended to DIR/probe.jsonl: process.memoryUsage(), V8's heap statistics,
//             and the counts of what a per-call leak would pile up in (handles, listeners on
//             process, native contexts, worker threads started and exited)
//   SIGUSR2   the same GC, then a heap snapshot written to DIR/heap-<seq>.heapsnapshot, its path
//             appended to DIR/probe.jsonl
// A signal, not a timer: the bench asks at cycle counts it chooses, and an idle probe costs nothing.
'use strict';
const { isMainThread } = require('node:worker_threads');
const dir = process.env.OVERLAY2_MEMORY_PROBE;

if (isMainThread && dir) {
  const fs = require('node:fs');
  const path = require('node:path');
  const v8 = require('node:v8');
  const out = path.join(dir, 'probe.jsonl');
  // Not --expose-gc: the stream workers start with the process's execArgv, and a worker refuses V8
  // flags there. The flag set at run time makes gc() in a fresh context, for this isolate only.
  v8.setFlagsFromString('--expose-gc');
  const gc = require('node:vm').runInNewContext('gc');
  const fullGc = () => { gc(); gc(); };
  const processListeners = () => {
    const counts = {};
    for (const name of process.eventNames()) counts[String(name)] = process.listenerCount(name);
    return counts;
  };
  const resources = () => {
    const counts = {};
    for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
    return counts;
  };
  // Worker threads started and exited so far: each is an isolate, a thread stack and (for glibc) a
  // thread that may take a malloc arena of its own. Counted by a subclass put in place before the
  // service's bundle reads worker_threads.Worker (it reads the property at each `new`).
  const threads = require('node:worker_threads');
  const workers = { started: 0, exited: 0 };
  const BaseWorker = threads.Worker;
  threads.Worker = class CountedWorker extends BaseWorker {
    constructor(...args) {
      super(...args);
      workers.started++;
      this.once('exit', () => { workers.exited++; });
    }
  };
  let seq = 0;
  process.on('SIGWINCH', () => {
    fullGc();
    const h = v8.getHeapStatistics();
    fs.appendFileSync(out, JSON.stringify({
      kind: 'stats', at: Date.now(), memory: process.memoryUsage(),
      heap: { used: h.used_heap_size, total: h.total_heap_size, malloced: h.malloced_memory, external: h.external_memory,
        nativeContexts: h.number_of_native_contexts, detachedContexts: h.number_of_detached_contexts },
      // the young generation grows in steps under allocation (semi-spaces doubled): RSS steps of its own
      spaces: Object.fromEntries(v8.getHeapSpaceStatistics().map((x) => [x.space_name, x.space_size])),
      resources: resources(), processListeners: processListeners(), workers,
    }) + '\n');
  });
  process.on('SIGUSR2', () => {
    fullGc();
    const file = path.join(dir, `heap-${++seq}.heapsnapshot`);
    v8.writeHeapSnapshot(file);
    fs.appendFileSync(out, JSON.stringify({ kind: 'snapshot', at: Date.now(), file }) + '\n');
  });
}
