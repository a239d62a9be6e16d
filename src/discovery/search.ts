import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Bm25Index, topK } from './bm25.js';
import { toolKey, type ToolEntry } from './catalog.js';
import type { Embedder, VectorScorer } from './embedder.js';
import { embeddingText, terms, toolText } from './text.js';
import { VectorIndex } from './vectors.js';

/**
 * Tool discovery: BM25 over names/descriptions/parameters, cosine similarity of sentence
 * embeddings, or a hybrid of both. Pure ranking over an index built once per catalogue; the
 * embedder is the only I/O (and is optional).
 */

export type SearchMode = 'hybrid' | 'bm25' | 'embedding';
export const SEARCH_MODES: readonly SearchMode[] = ['hybrid', 'bm25', 'embedding'];

export interface SearchHit { tool: ToolEntry; score: number }

export interface SearchOptions {
  k: number;
  /** Only tools this returns true for are ranked (the caller's permitted tools). */
  filter?: (t: ToolEntry) => boolean;
  /** If given, filled with where this search's wall time went in this process (benchmarks). */
  timing?: SearchTiming;
}

/**
 * Wall milliseconds of one search in this process. `embedWaitMs` is the time spent waiting for
 * the query's scores after the lexical side was done (the worker runs while BM25 does).
 */
export interface SearchTiming { totalMs: number; lexicalMs: number; embedWaitMs: number; semanticRankMs: number; mergeMs: number }

/**
 * The hybrid is reciprocal rank fusion, 1/(K + rank by BM25) + 1/(K + rank by embedding): ranks,
 * unlike raw scores, need no normalising between two very different scales. K was picked on the
 * BFCL-derived benchmark (docs/discovery.md: recall@5 0.901 against 0.892 with K = 60 and 0.900
 * for the best weighted sum of normalised scores).
 */
export const RRF_K = 10;

/**
 * Rank (0 = best) of each allowed document by score; equal scores share a rank (the number of
 * documents scoring higher), so tools BM25 knows nothing about tie instead of following
 * catalogue order. One native numeric sort of the allowed scores, then a binary search per
 * document: at 5,000 tools a fifth of the time of sorting indices with a comparator.
 */
function ranks(scores: Float64Array, allowed: Uint8Array): Float64Array {
  let m = 0;
  const sorted = new Float64Array(scores.length);
  for (let i = 0; i < scores.length; i++) if (allowed[i]) sorted[m++] = scores[i]!;
  const asc = sorted.subarray(0, m).sort();
  const out = new Float64Array(scores.length);
  for (let d = 0; d < scores.length; d++) {
    if (!allowed[d]) continue;
    // First position holding a score above this one: everything from there on ranks higher.
    const s = scores[d]!;
    let lo = 0; let hi = m;
    while (lo < hi) { const mid = (lo + hi) >>> 1; if (asc[mid]! <= s) lo = mid + 1; else hi = mid; }
    out[d] = m - lo;
  }
  return out;
}

/** Embeddings of texts already seen, by SHA-256 of model + text: a changed list re-embeds only what changed. */
export class EmbeddingCache {
  private readonly map = new Map<string, Float32Array>();
  constructor(private readonly max = 50_000) {}
  static key(model: string, text: string): string { return createHash('sha256').update(model).update('\0').update(text).digest('base64'); }
  get(k: string): Float32Array | undefined { return this.map.get(k); }
  set(k: string, v: Float32Array): void {
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(k, v);
  }
}

export class ToolSearch {
  private constructor(
    readonly tools: ToolEntry[],
    readonly mode: SearchMode,
    private readonly bm25: Bm25Index,
    private readonly vectors: VectorIndex | null,
    private readonly embedder: Embedder | null,
    private readonly scorer: VectorScorer | null,
  ) {}

  private inflight = 0;
  private closing: (() => void) | null = null;

  static async build(tools: ToolEntry[], mode: SearchMode, embedder: Embedder | null, cache = new EmbeddingCache()): Promise<ToolSearch> {
    if (mode !== 'bm25' && !embedder) throw new Error(`search mode "${mode}" needs an embedding model`);
    const bm25 = new Bm25Index(tools.map(toolText));
    let vectors: VectorIndex | null = null;
    if (mode !== 'bm25' && embedder) {
      vectors = new VectorIndex(embedder.dim, tools.length);
      const texts = tools.map(embeddingText);
      const keys = texts.map((t) => EmbeddingCache.key(embedder.model, t));
      const missing = [...new Set(keys.filter((k) => !cache.get(k)))];
      if (missing.length) {
        const byKey = new Map(keys.map((k, i) => [k, texts[i]!]));
        const got = await embedder.embed(missing.map((k) => byKey.get(k)!));
        missing.forEach((k, i) => cache.set(k, got[i]!));
      }
      for (const k of keys) vectors.add(cache.get(k)!);
      // An embedder that can hold the vectors next to the model scores there (one round trip, a
      // BLAS product); this process then keeps no copy of the matrix.
      if (embedder.scorer) {
        const scorer = await embedder.scorer(vectors.matrix, vectors.size);
        return new ToolSearch(tools, mode, bm25, null, embedder, scorer);
      }
    }
    return new ToolSearch(tools, mode, bm25, vectors, embedder, null);
  }

  /** Bytes held by the index's vectors, wherever they are held (BM25 postings are small next to them). */
  get vectorBytes(): number { return this.scorer?.bytes ?? this.vectors?.bytes ?? 0; }

  /** Releases the vectors held by the embedder, after searches in flight have finished. */
  async close(): Promise<void> {
    if (!this.scorer) return;
    if (this.inflight) await new Promise<void>((r) => { this.closing = r; });
    await this.scorer.close();
  }

  private semanticScores(query: string): Promise<Float64Array> {
    if (this.scorer) return this.scorer.scores(query);
    return this.embedder!.embed([query]).then(([q]) => this.vectors!.scores(q!));
  }

  async search(query: string, o: SearchOptions): Promise<SearchHit[]> {
    this.inflight++;
    try { return await this.rank(query, o); } finally {
      if (--this.inflight === 0 && this.closing) { this.closing(); this.closing = null; }
    }
  }

  private async rank(query: string, o: SearchOptions): Promise<SearchHit[]> {
    const t0 = performance.now();
    const k = Math.max(1, Math.min(o.k, 100));
    const n = this.tools.length;
    // The query goes to the embedder first, so its forward pass runs in the worker while this
    // process does BM25, the filter and the lexical ranking.
    const semanticP = this.mode !== 'bm25' ? this.semanticScores(query) : null;
    let lexical: Float64Array | null = null;
    let semantic: Float64Array | null = null;
    let lr: Float64Array | null = null;
    const allowed = new Uint8Array(n);
    let t1: number;
    try {
      if (this.mode !== 'embedding') lexical = this.bm25.scores(terms(query));
      for (let i = 0; i < n; i++) allowed[i] = !o.filter || o.filter(this.tools[i]!) ? 1 : 0;
      if (this.mode === 'hybrid') lr = ranks(lexical!, allowed);
    } finally {
      t1 = performance.now();
      // Awaited on every path, so a failed embedding is never an unhandled rejection.
      if (semanticP) semantic = await semanticP;
    }
    const t2 = performance.now();
    const combined = new Float64Array(n);
    if (this.mode === 'hybrid') {
      const sr = ranks(semantic!, allowed);
      const t3 = performance.now();
      for (let i = 0; i < n; i++) combined[i] = allowed[i] ? 1 / (RRF_K + lr![i]!) + 1 / (RRF_K + sr[i]!) : -Infinity;
      if (o.timing) o.timing.semanticRankMs = t3 - t2;
    } else {
      const source = this.mode === 'bm25' ? lexical! : semantic!;
      for (let i = 0; i < n; i++) combined[i] = allowed[i] ? source[i]! : -Infinity;
      if (o.timing) o.timing.semanticRankMs = 0;
    }
    // BM25 alone ranks only tools sharing a term with the query; the others say nothing.
    const floor = this.mode === 'bm25' ? 0 : -Infinity;
    const hits = topK(combined, k, floor).filter((s) => s.score > -Infinity).map((s) => ({ tool: this.tools[s.doc]!, score: Math.round(s.score * 1e6) / 1e6 }));
    if (o.timing) {
      const end = performance.now();
      Object.assign(o.timing, { totalMs: end - t0, lexicalMs: t1 - t0, embedWaitMs: t2 - t1, mergeMs: end - t2 - o.timing.semanticRankMs });
    }
    return hits;
  }

  /** Whether `other` holds exactly the same tools (by server, name and text). */
  sameTools(other: ToolEntry[]): boolean {
    if (other.length !== this.tools.length) return false;
    const mine = new Map(this.tools.map((t) => [toolKey(t), JSON.stringify(t)]));
    return other.every((t) => mine.get(toolKey(t)) === JSON.stringify(t));
  }
}
