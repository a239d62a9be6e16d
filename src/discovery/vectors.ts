/**
 * Unit vectors in one flat Float32Array (n × dim): a query is scored against every tool with one
 * pass of dot products, which at 5,000 tools × 384 dimensions is about two million multiply-adds.
 */
export class VectorIndex {
  private data: Float32Array;
  private count = 0;

  constructor(readonly dim: number, capacity = 16) {
    this.data = new Float32Array(dim * Math.max(1, capacity));
  }

  get size(): number { return this.count; }

  /** The stored vectors, row-major, as a view (no copy). */
  get matrix(): Float32Array { return this.data.subarray(0, this.count * this.dim); }

  /** Memory held by the vectors, in bytes. */
  get bytes(): number { return this.data.byteLength; }

  add(v: Float32Array): number {
    if (v.length !== this.dim) throw new Error(`vector of ${v.length} dimensions, index has ${this.dim}`);
    if ((this.count + 1) * this.dim > this.data.length) {
      const next = new Float32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data.set(v, this.count * this.dim);
    return this.count++;
  }

  /** Cosine similarity of `q` (a unit vector) with every stored vector. */
  scores(q: Float32Array): Float64Array {
    const out = new Float64Array(this.count);
    const d = this.data;
    const dim = this.dim;
    // Four independent sums let the CPU overlap the multiply-adds: 1.6 ms instead of 2.8 ms at
    // 5,000 × 384 (measured). The tail loop covers dimensions that are not a multiple of 4.
    const body = dim - (dim % 4);
    for (let i = 0, off = 0; i < this.count; i++, off += dim) {
      let a = 0; let b = 0; let c = 0; let e = 0;
      for (let j = 0; j < body; j += 4) {
        a += d[off + j]! * q[j]!; b += d[off + j + 1]! * q[j + 1]!; c += d[off + j + 2]! * q[j + 2]!; e += d[off + j + 3]! * q[j + 3]!;
      }
      for (let j = body; j < dim; j++) a += d[off + j]! * q[j]!;
      out[i] = a + b + c + e;
    }
    return out;
  }
}
