/** The label value every value past the cap is counted under. */
export const OVERFLOW_LABEL = 'other';

/**
 * Per-label-value state with a cap on how many distinct values get their own series, so a
 * misconfigured sidecar (or anything else feeding label values) cannot grow Prometheus without
 * bound. Values past the cap share one entry labelled "other".
 *
 * get() is a Map lookup on the hot path; the factory runs once per distinct value.
 */
export class BoundedLabels<T> {
  private readonly entries = new Map<string, T>();
  private overflow: T | null = null;

  constructor(private readonly max: number, private readonly create: (value: string) => T) {
    if (!(max >= 1)) throw new Error(`label cap must be at least 1, got ${max}`);
  }

  get(value: string): T {
    const hit = this.entries.get(value);
    if (hit !== undefined) return hit;
    // A real value spelled like the overflow label shares its series rather than duplicating it.
    if (this.entries.size < this.max && value !== OVERFLOW_LABEL) {
      const made = this.create(value);
      this.entries.set(value, made);
      return made;
    }
    if (this.overflow === null) this.overflow = this.create(OVERFLOW_LABEL);
    return this.overflow;
  }

  /** Every entry, the overflow one last (for scrape time). */
  *values(): IterableIterator<T> {
    yield* this.entries.values();
    if (this.overflow !== null) yield this.overflow;
  }

  get size(): number {
    return this.entries.size + (this.overflow === null ? 0 : 1);
  }
}
