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

/**
 * Rounds for a write that gives leases back (shutdown, a window that ended, a removed budget).
 * There is no later tick to try again at, and a give-back that never lands leaves its unspent
 * lease counted as spent until it expires and any spending past the lease unreported; so it tries
 * longer (at most about 9 s of waiting at the 250 ms cap).
 */
export const MAX_GIVE_BACK_ROUNDS = 40;

/** The longest wait between two rounds, in ms, while few replicas share the key. */
export const MAX_BACKOFF_MS = 250;

/** The first round's wait ceiling, in ms; doubles per lost round up to MAX_BACKOFF_MS. */
const BASE_BACKOFF_MS = 4;

/**
 * Wait before round `lost + 1` after `lost` rounds (1-based count) lost in a row: uniform in
 * [0, min(cap, 4·2^(lost-1))). `random` must return [0, 1), as Math.random does; anything else
 * (NaN, out of range, a broken stub) is clamped rather than turned into a negative or endless wait.
 */
export function conflictBackoffMs(lost: number, random: () => number = Math.random): number {
  if (!(lost >= 1)) return 0;
  const ceiling = Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** Math.min(lost - 1, 16));
  const r = random();
  const u = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1 - Number.EPSILON) : 0;
  return Math.floor(u * ceiling);
}

/**
 * The next interval between reports of held spending. `conflicts`: rounds the last sync lost;
 * `gaveUp`: it lost every round. Never below the sync interval, never above `maxMs` (a third of
 * the lease ttl: the lease is renewed by then anyway, so reporting less often saves nothing).
 */
export function nextReportInterval(currentMs: number, conflicts: number, gaveUp: boolean, syncIntervalMs: number, maxMs: number): number {
  const ceiling = Math.max(syncIntervalMs, maxMs);
  if (gaveUp) return ceiling;
  if (conflicts > 0) return Math.min(ceiling, Math.max(syncIntervalMs, currentMs) * 2);
  return Math.min(ceiling, Math.max(syncIntervalMs, currentMs - syncIntervalMs));
}
