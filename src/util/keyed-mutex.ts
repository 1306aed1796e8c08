// Serializes async work per key (moby's locker.Locker): get/put/remove of one layer never interleave,
// while different layers proceed in parallel.

export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** Whether any work runs or waits under one of the keys. */
  get busy(): boolean {
    return this.tails.size > 0;
  }

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => { release = r; });
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
