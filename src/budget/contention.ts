/**
 * How a replica behaves when other replicas write the same usage key. Every replica of a shared
 * budget updates one KV key by compare-and-set; with hundreds of replicas most rounds lose, and
 * retrying at once only makes the next round as crowded (docs/scaling.md, N = 1,000). Two levers,
 * both pure so they test without NATS:
 *
 * - a lost round waits a random time that grows with each loss (full jitter), so the writers
 *   spread out instead of colliding again;
 * - how often a replica reports spending it still holds a lease for adapts: it doubles after a
 *   sync that had to retry, and falls back by one sync interval after a clean one. Reporting is
 *   for the view others have of the budget, not for safety (what a replica spends is inside a
 *   lease every other replica already counts), so a crowded key costs freshness, not correctness.
 */

/** Compare-and-set rounds a sync tries before it leaves the key to the others until the next tick. */
export const MAX_CAS_ROUNDS = 12;

/** The longest wait between two rounds, in ms. */
const MAX_BACKOFF_MS = 250;

/** Wait before round `round + 1` after `round` (0-based) lost: uniform in [0, min(cap, 4·2^round)). */
export function conflictBackoffMs(round: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, 4 * 2 ** Math.min(round, 16));
  return Math.floor(random() * ceiling);
}

/**
 * The next interval between reports of held spending. `conflicts`: rounds the last sync lost;
 * `gaveUp`: it lost every round. Never below the sync interval, never above `maxMs` (a third of
 * the lease ttl, when a lease is renewed anyway).
 */
export function nextReportInterval(currentMs: number, conflicts: number, gaveUp: boolean, syncIntervalMs: number, maxMs: number): number {
  const ceiling = Math.max(syncIntervalMs, maxMs);
  if (gaveUp) return ceiling;
  if (conflicts > 0) return Math.min(ceiling, Math.max(syncIntervalMs, currentMs) * 2);
  return Math.max(syncIntervalMs, currentMs - syncIntervalMs);
}
