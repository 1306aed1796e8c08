// Reference counts of mounts, like moby's graphdriver.RefCounter: the first time a path is seen,
// a mount already present there (left by an earlier process) counts as one reference.

export class RefCounter {
  private readonly counts = new Map<string, { count: number; checked: boolean }>();

  constructor(private readonly isMounted: (path: string) => boolean) {}

  private entry(path: string) {
    let m = this.counts.get(path);
    if (!m) {
      m = { count: 0, checked: false };
      this.counts.set(path, m);
    }
    if (!m.checked) {
      m.checked = true;
      if (this.isMounted(path)) m.count++;
    }
    return m;
  }

  increment(path: string): number {
    return ++this.entry(path).count;
  }

  decrement(path: string): number {
    const m = this.entry(path);
    if (m.count > 0) m.count--;
    return m.count;
  }

  /** Whether this counter has looked at `path` yet (its first use by this driver). */
  seen(path: string): boolean {
    return this.counts.has(path);
  }

  count(path: string): number {
    return this.counts.get(path)?.count ?? 0;
  }

  forget(path: string): void {
    this.counts.delete(path);
  }

  clear(): void {
    this.counts.clear();
  }
}
