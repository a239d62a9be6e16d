/**
 * Compact column storage for the review index: typed arrays that grow by doubling, and string
 * dictionaries, so a million records cost tens of bytes each instead of a parsed object each.
 */

type NumArray = Float64Array | Uint32Array | Uint16Array | Uint8Array;
type NumArrayCtor<T extends NumArray> = { new (n: number): T };

/** A typed array that grows; `data` may be longer than `length` (read only below length). */
export class Column<T extends NumArray> {
  data: T;
  constructor(private readonly ctor: NumArrayCtor<T>, capacity = 1024) {
    this.data = new ctor(capacity);
  }

  set(i: number, v: number): void {
    if (i >= this.data.length) {
      let n = this.data.length * 2;
      while (n <= i) n *= 2;
      const next = new this.ctor(n);
      next.set(this.data as ArrayLike<number>);
      this.data = next;
    }
    this.data[i] = v;
  }

  bytes(): number {
    return this.data.byteLength;
  }
}

/**
 * Distinct strings of one field; id 0 is "absent" (null). Values are stored once however many
 * records carry them, so the index grows with the number of distinct teams or tools, not records.
 */
export class Dict {
  private readonly ids = new Map<string, number>();
  readonly values: Array<string | null> = [null];

  id(v: string | null | undefined): number {
    if (v === null || v === undefined) return 0;
    let id = this.ids.get(v);
    if (id === undefined) {
      id = this.values.length;
      this.values.push(v);
      this.ids.set(v, id);
    }
    return id;
  }

  get size(): number {
    return this.values.length;
  }

  value(id: number): string | null {
    return this.values[id] ?? null;
  }

  /** One flag per id: whether the value passes `test` (absent values never do). */
  select(test: (v: string) => boolean): Uint8Array {
    const out = new Uint8Array(this.values.length);
    for (let i = 1; i < this.values.length; i++) if (test(this.values[i]!)) out[i] = 1;
    return out;
  }
}
