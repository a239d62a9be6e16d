import type { ToolText } from './text.js';

/**
 * Okapi BM25 over tool texts with an inverted index, so a query touches only the postings of its
 * own terms. Name terms count three times and parameter terms once against the description's
 * twice: a tool's name says most about what it does, its parameters least.
 */

const K1 = 1.2;
const B = 0.75;
const WEIGHTS = { name: 3, description: 2, params: 1 } as const;

export interface Scored { doc: number; score: number }

export class Bm25Index {
  private readonly postings = new Map<string, { doc: number; tf: number }[]>();
  private readonly lengths: number[] = [];
  private totalLength = 0;

  constructor(docs: ToolText[]) {
    for (const d of docs) this.add(d);
  }

  get size(): number { return this.lengths.length; }

  private add(d: ToolText): void {
    const doc = this.lengths.length;
    const tf = new Map<string, number>();
    let len = 0;
    for (const field of ['name', 'description', 'params'] as const) {
      const w = WEIGHTS[field];
      for (const t of d[field]) { tf.set(t, (tf.get(t) ?? 0) + w); len += w; }
    }
    for (const [t, n] of tf) {
      let list = this.postings.get(t);
      if (!list) { list = []; this.postings.set(t, list); }
      list.push({ doc, tf: n });
    }
    this.lengths.push(len);
    this.totalLength += len;
  }

  /** Scores of every document sharing a term with the query (others score 0), as a dense array. */
  scores(query: string[]): Float64Array {
    const out = new Float64Array(this.size);
    if (!this.size) return out;
    const avg = this.totalLength / this.size;
    const n = this.size;
    for (const t of new Set(query)) {
      const list = this.postings.get(t);
      if (!list) continue;
      const idf = Math.log(1 + (n - list.length + 0.5) / (list.length + 0.5));
      for (const { doc, tf } of list) {
        out[doc]! += idf * (tf * (K1 + 1)) / (tf + K1 * (1 - B + B * this.lengths[doc]! / avg));
      }
    }
    return out;
  }
}

/** Indices of the k highest scores, best first (ties: lower index first). Linear in n for small k. */
export function topK(scores: ArrayLike<number>, k: number, minScore = -Infinity): Scored[] {
  const best: Scored[] = [];
  for (let doc = 0; doc < scores.length; doc++) {
    const score = scores[doc]!;
    if (score <= minScore) continue;
    if (best.length === k && score <= best[best.length - 1]!.score) continue;
    let i = best.length < k ? best.length : k - 1;
    if (best.length < k) best.push({ doc, score }); else best[i] = { doc, score };
    while (i > 0 && best[i - 1]!.score < score) { best[i] = best[i - 1]!; best[i - 1] = { doc, score }; i--; }
  }
  return best;
}
