// Loads the WASM core (build/core.wasm): the module is compiled once; each operation takes an
// instance with its own shared memory from a small pool, so concurrent operations never share
// scan regions or heaps.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MEMORY_BASE } from './regions.js';
import { Overlay2Error } from '../errors.js';

export interface CoreExports {
  recordVersion(): number;
  recordLayoutCount(): number;
  recordLayoutValue(i: number): number;
  recordField(ptr: number, field: number): bigint;
  coreReset(): void;
  sizeConsume(records: number, count: number): void;
  sizeTotal(): bigint;
  usageConsume(records: number, count: number): void;
  usageTotal(): bigint;
  usageInodes(): bigint;
  inodeCount(): number;
  treeAppend(tree: number, records: number, count: number, heap: number): number;
  treeFinish(tree: number): void;
  treeCount(tree: number): number;
  treeFlagsSeen(tree: number): number;
  treeNodeAddr(tree: number, node: number): number;
  treeNameAddr(tree: number, node: number): number;
  treeNameLen(tree: number, node: number): number;
  naiveCompare(rootsOnSameDevice: number): void;
  changeCount(): number;
  changesFinish(): number;
  changesOutput(): number;
  walkPush(layers: number): void;
  walkListApply(records: number, count: number, heap: number): number;
  walkListDone(): number;
  walkPop(): void;
  walkNext(): number;
  walkChild(): number;
  walkChildNameAddr(): number;
  walkChildNameLen(): number;
  walkChildIsDir(): number;
  walkChildLayers(): number;
  probeBegin(): void;
  probeEnd(found: number): void;
  streamOutput(): number;
  streamOutputLen(): number;
  streamOutputReset(): void;
  streamChunkSize(bytes: number): void;
  nativeLookupPrepare(layerPos: number, names: number, namesCap: number, maxCount: number): number;
  nativeLookupApply(layer: number, records: number, count: number, heap: number): number;
  nativeUpperPrepare(names: number, namesCap: number, maxCount: number): number;
  nativeUpperApply(records: number, count: number, heap: number): number;
  nativeLastErrno(): number;
  nativeNeedsListing(): number;
  nativeListBegin(): void;
  nativeListLayerBegin(): void;
  nativeListApply(records: number, count: number, heap: number): void;
  nativeListLayerEnd(): void;
  nativeListFinish(): void;
  nativeClassify(): void;
  nativeFrameDepth(): number;
  ERR_NEEDS_NAIVE: WasmGlobal;
  ERR_LOOKUP: WasmGlobal;
  ERR_BAD_DEPTH: WasmGlobal;
  WALK_END: WasmGlobal;
  WALK_CHILD: WasmGlobal;
  WALK_PROBE: WasmGlobal;
  WALK_FLUSH: WasmGlobal;
  WALK_FOUND: WasmGlobal;
}

/** Error codes the core returns (the exported globals hold the same values). */
export const CORE_ERR_BAD_DEPTH = 1;
export const CORE_ERR_NEEDS_NAIVE = 2;
export const CORE_ERR_LOOKUP = 3;

/** walkNext's answers (assembly/native.ts WALK_*; the exported globals hold the same values). */
export const WALK_END = 0;
export const WALK_CHILD = 1;
export const WALK_PROBE = 2;
export const WALK_FLUSH = 3;
export const WALK_FOUND = 4;

const PAGE = 65536;
const INITIAL_PAGES = MEMORY_BASE / PAGE; // the module's own minimum
const MAXIMUM_PAGES = 32768;              // asconfig.json maximumMemory (2 GiB)
const POOL_SIZE = 4;
const POOL_MAX_BYTES = 64 * 1024 * 1024;  // a bigger (grown) memory is dropped, not pooled

// The ES2022 lib has no WebAssembly types (they live in lib.dom): the few we use, typed here.
interface WasmMemory { readonly buffer: SharedArrayBuffer }
interface WasmGlobal { value: number }
interface WasmModule { readonly __module: unique symbol }
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: object };
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let compiled: WasmModule | undefined;

function wasmPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'build', 'core.wasm');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Overlay2Error('ERR_NOT_SUPPORTED', 'overlay2: build/core.wasm not found (run `npm run build:wasm`)');
}

function coreModule(): WasmModule {
  compiled ??= new WA.Module(readFileSync(wasmPath()));
  return compiled;
}

export class Core {
  readonly memory: WasmMemory;
  readonly exports: CoreExports;
  /** The host regions [0, MEMORY_BASE): valid for the life of the instance, growth or not. */
  readonly low: Uint8Array;

  constructor() {
    this.memory = new WA.Memory({ initial: INITIAL_PAGES, maximum: MAXIMUM_PAGES, shared: true });
    const instance = new WA.Instance(coreModule(), { env: { memory: this.memory } });
    this.exports = instance.exports as unknown as CoreExports;
    this.low = new Uint8Array(this.memory.buffer, 0, MEMORY_BASE);
    this.exports.coreReset();
  }

  /** A view of `len` bytes at `addr` anywhere in memory (a fresh view: memory may have grown). */
  view(addr: number, len: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, addr, len);
  }

  /** A Buffer over the same bytes, for decoding strings without a copy. */
  buffer(addr: number, len: number): Buffer {
    return Buffer.from(this.memory.buffer as unknown as ArrayBuffer, addr, len);
  }
}

const idle: Core[] = [];

/** An instance ready for one operation (reset, host regions at their fixed addresses). */
export function acquireCore(): Core {
  const core = idle.pop();
  if (core) {
    core.exports.coreReset();
    return core;
  }
  return new Core();
}

export function releaseCore(core: Core): void {
  if (idle.length < POOL_SIZE && core.memory.buffer.byteLength <= POOL_MAX_BYTES && !idle.includes(core)) idle.push(core);
}

/** Runs `fn` with an instance of its own and gives it back afterwards. */
export async function withCore<T>(fn: (core: Core) => Promise<T> | T): Promise<T> {
  const core = acquireCore();
  try {
    return await fn(core);
  } finally {
    releaseCore(core);
  }
}
