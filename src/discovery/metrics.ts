/**
 * Retrieval quality for one query, with binary relevance. recall@k: the share of the expected
 * tools found in the top k; nDCG@k: discounted gain of those hits against an ideal ranking;
 * reciprocal rank: 1 / rank of the first expected tool within the top k (0 if none).
 */

export interface Expected { name: string; server?: string }

export interface QueryScore { recall: number; ndcg: number; rr: number }

export function matches(e: Expected, hit: { server: string; name: string }): boolean {
  return e.name === hit.name && (e.server === undefined || e.server === hit.server);
}

export function scoreRanking(ranked: { server: string; name: string }[], expected: Expected[], k: number): QueryScore {
  if (!expected.length) throw new Error('a query needs at least one expected tool');
  const top = ranked.slice(0, k);
  const found = new Set<number>();
  let dcg = 0;
  let rr = 0;
  top.forEach((hit, i) => {
    const e = expected.findIndex((x, j) => !found.has(j) && matches(x, hit));
    if (e < 0) return;
    found.add(e);
    dcg += 1 / Math.log2(i + 2);
    if (rr === 0) rr = 1 / (i + 1);
  });
  let ideal = 0;
  for (let i = 0; i < Math.min(k, expected.length); i++) ideal += 1 / Math.log2(i + 2);
  return { recall: found.size / expected.length, ndcg: ideal ? dcg / ideal : 0, rr };
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}
