interface Entry<V> {
  value: V;
  expiresAtMs: number;
}

/**
 * Verified tokens until they expire. Bounded; when full the oldest insertion goes (a Map keeps
 * insertion order), so a hit costs one Map lookup and one comparison, with no reordering.
 */
export class TokenCache<V> {
  private readonly entries = new Map<string, Entry<V>>();

  constructor(readonly maxEntries: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: string, nowMs: number): V | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (nowMs < e.expiresAtMs) return e.value;
    this.entries.delete(key);
    return undefined;
  }

  set(key: string, value: V, expiresAtMs: number, nowMs: number): void {
    if (this.maxEntries <= 0 || !(expiresAtMs > nowMs)) return;
    if (!this.entries.delete(key) && this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expiresAtMs });
  }

  clear(): void {
    this.entries.clear();
  }
}
