import type { LeaseSettings } from './config.js';
import { isObject } from '../util/object.js';

/**
 * Lease accounting for budgets shared by many authz replicas: pure functions over the value stored
 * in one NATS KV entry per budget and window. The store (nats-store.ts) reads the entry, calls
 * settle(), and writes the result back with compare-and-set on the entry's revision, retrying on
 * conflict; so every change below happens atomically with respect to every other replica.
 *
 * The entry is two counters, whatever the number of replicas:
 * - `committed`: tokens spent plus tokens reserved by leases still out. A grant keeps
 *   `committed ≤ limit`. Spending inside a lease does not change it, so a replica writes only to
 *   take a lease, to report spending past one, or to give the unspent rest back.
 * - `reported`: of those, the tokens replicas have said they spent (for `budget status`).
 * - `holders`: how many replicas hold a lease, for sizing leases so that all of them together hold
 *   at most half the limit (fairShare). A replica that dies holding one is never subtracted, so
 *   this can only overcount, which makes leases smaller, never the budget larger.
 * An earlier format listed every replica's lease in the entry. Its size, and the renewals every
 * lease needed, grew with the number of replicas, until a thousand sidecars on one budget could no
 * longer keep their leases (docs/scaling.md). Counters keep the entry and the write rate flat.
 *
 * Replica crash: its lease is never given back, so it stays in `committed`: spent, as far as the
 * budget is concerned. That wastes at most the lease and can never let the budget overshoot,
 * whatever the dead replica spent of it. No replica writes off another's lease, so a live replica
 * slowed by contention never loses what it holds.
 *
 * `epoch` names one life of the entry. A lease is granted within an epoch; a replica takes its
 * lease back out of `committed` only in the epoch that granted it. An entry made again (its bucket
 * recreated, or the entry written by an older Tollgate, whose format has no epoch) has another
 * epoch, and a lease from before counts as spent, never as tokens to take back.
 */

export interface LeaseRecord {
  /** The epoch of the entry that granted it. */
  epoch: string;
  amount: number;
  /** ms since the epoch, by this replica's clock; informational. */
  grantedAt: number;
}

export interface UsageState {
  epoch: string;
  committed: number;
  reported: number;
  holders: number;
  /** The limit the last writer applied (informational, for `budget status`). */
  limit?: number;
  /** Bumped by `tollgate budget reset`. */
  resets?: number;
  updatedAt?: number;
}

export function emptyUsageState(epoch = ''): UsageState {
  return { epoch, committed: 0, reported: 0, holders: 0 };
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? Math.max(0, v) : 0);

/**
 * Reads a stored entry; anything unreadable becomes empty fields rather than a crash. An entry in
 * the earlier format (`{ used, leases }`) reads as everything used or leased being committed, and
 * what it says was used as reported.
 */
export function decodeUsageState(text: string): UsageState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return emptyUsageState();
  }
  if (!isObject(raw)) return emptyUsageState();
  let s: UsageState;
  if (raw.v === 2) {
    s = { epoch: typeof raw.epoch === 'string' ? raw.epoch : '', committed: num(raw.committed), reported: num(raw.reported), holders: Math.floor(num(raw.holders)) };
  } else {
    let leased = 0;
    let holders = 0;
    if (isObject(raw.leases)) for (const l of Object.values(raw.leases)) if (isObject(l)) { leased += num(l.amount); holders++; }
    s = { epoch: '', committed: num(raw.used) + leased, reported: num(raw.used), holders };
  }
  if (typeof raw.limit === 'number') s.limit = raw.limit;
  if (typeof raw.resets === 'number') s.resets = raw.resets;
  if (typeof raw.updatedAt === 'number') s.updatedAt = raw.updatedAt;
  return s;
}

/**
 * `used` repeats `committed` for replicas of the earlier format during a rolling upgrade: they read
 * `used` as spent, so they count every lease as spent (safe), and the entry they write back lists
 * their own lease, which decodeUsageState() adds again.
 */
export function encodeUsageState(s: UsageState): string {
  return JSON.stringify({ v: 2, epoch: s.epoch, committed: s.committed, reported: s.reported, holders: s.holders, used: s.committed, limit: s.limit, resets: s.resets, updatedAt: s.updatedAt });
}

export interface SettleRequest {
  /** The lease this replica holds (as it last learned it), or null. */
  held: LeaseRecord | null;
  /** Tokens spent since `held` was granted (or since the last report), possibly more than it. */
  spent: number;
  /** Size of the lease to hold after this write; 0 gives everything back. */
  want: number;
  /**
   * The part of `want` granted even past the fair share (fairShare): what calls may spend while
   * this write is in flight, a call larger than the usual lease, or two sync intervals at the
   * spending rate this replica has shown. Default 0.
   */
  keep?: number;
  limit: number;
  now: number;
  /** The epoch for an entry that does not exist yet. */
  newEpoch: string;
  /** There is no entry yet (`state` is the first value, perhaps carried over). */
  fresh?: boolean;
}

export interface SettleResult {
  state: UsageState;
  grant: LeaseRecord | null;
  /** Tokens neither committed nor granted after this write (negative when the budget is overdrawn). */
  available: number;
}

/**
 * One replica's report-and-renew: what it spent becomes committed in place of its lease (the
 * unspent rest goes back), and it is granted a fresh lease of up to `want` from what is left.
 */
export function settle(state: UsageState, req: SettleRequest): SettleResult {
  const s: UsageState = { ...state };
  if (req.fresh || s.epoch === '') s.epoch = req.newEpoch;
  const spent = Math.max(0, req.spent);
  const held = req.held;
  const counted = held !== null && held.epoch === state.epoch && state.epoch !== '';
  if (held && counted) {
    s.committed = Math.max(0, s.committed - held.amount) + spent;
  } else {
    // The lease is not in this entry's count (another epoch): it stays spent; only what was spent
    // beyond it is new.
    s.committed += Math.max(0, spent - (held?.amount ?? 0));
  }
  s.reported += spent;
  const available = req.limit - s.committed;
  const fair = fairShare(req.limit, s.holders + (counted ? 0 : 1));
  const amount = Math.floor(Math.min(req.want, Math.max(req.keep ?? 0, fair), Math.max(0, available)));
  let grant: LeaseRecord | null = null;
  if (amount > 0) {
    grant = { epoch: s.epoch, amount, grantedAt: req.now };
    s.committed += amount;
  }
  if (counted && !grant) s.holders = Math.max(0, s.holders - 1);
  else if (!counted && grant) s.holders += 1;
  s.limit = req.limit;
  s.updatedAt = req.now;
  return { state: s, grant, available: available - amount };
}

/**
 * After a write whose outcome is unknown (it timed out: it may or may not have landed), what is
 * still to be reported, so that the next write is safe either way. The lease is dropped (it may be
 * given back already); spending past it is reported again, and all spending since. If the write
 * landed, this counts that spending twice and wastes the lease it granted; if it did not, the
 * held lease stays committed as spent. Waste either way, never overshoot.
 */
export function unknownOutcome(held: LeaseRecord | null, spentInWrite: number, spentSince: number): number {
  return Math.max(0, spentInWrite - (held?.amount ?? 0)) + Math.max(0, spentSince);
}

/**
 * How big a lease to ask for: a fraction of the limit within [min, max], raised to cover two sync
 * intervals at the rate this replica has been spending, and never more than the limit.
 */
export function leaseSize(limit: number, settings: LeaseSettings, tokensPerMs = 0, syncIntervalMs = 1000): number {
  const byFraction = Math.ceil(limit * settings.fraction);
  const byRate = Math.ceil(tokensPerMs * syncIntervalMs * 2);
  const size = Math.min(settings.max, Math.max(settings.min, byFraction, byRate));
  return Math.max(1, Math.min(size, limit));
}

/**
 * The most one replica should hold while `holders` replicas hold leases: together they then hold
 * at most half the limit, and the other half is there for whoever spends. Without it, the first
 * replicas to start would lease a budget out (1,000 replicas × 1% of the limit is ten limits) and
 * the rest would find it used up with nothing spent.
 */
export function fairShare(limit: number, holders: number): number {
  return Math.max(1, Math.floor(limit / (2 * Math.max(1, holders))));
}

/**
 * `tollgate budget reset`: what replicas reported spent is forgotten; leases stay committed, being
 * reservations still in use (and so do leases of replicas that stopped without giving them back).
 */
export function resetState(state: UsageState, now: number): UsageState {
  return { ...state, committed: Math.max(0, state.committed - state.reported), reported: 0, resets: (state.resets ?? 0) + 1, updatedAt: now };
}
