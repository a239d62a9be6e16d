import type { LeaseSettings } from './config.js';
import { isObject } from '../util/object.js';

/**
 * Lease accounting for budgets shared by many authz replicas: pure functions over the value stored
 * in one NATS KV entry per budget and window. The store (nats-store.ts) reads the entry, calls
 * settle(), and writes the result back with compare-and-set on the entry's revision, retrying on
 * conflict; so every change below happens atomically with respect to every other replica.
 *
 * The entry: { used, leases: { replicaId: { id, amount, expiresAt } } }
 * - `used`: tokens reported spent (or written off) in the window.
 * - a lease: tokens reserved for one replica, which spends them locally without asking anyone.
 * Invariant kept at every grant: used + Σ leases ≤ limit. Spending past a lease happens only for
 * responses of calls already allowed (see docs/budgets.md, "worst-case overshoot").
 *
 * Replica crash: its lease stops being renewed; once `expiresAt` (+ clock-skew grace) passes, any
 * replica folds the lease into `used` in full. Counting a dead replica's lease as spent can waste
 * at most that lease, and can never let the budget overshoot, whatever the dead replica had
 * spent of it before dying.
 */

export interface LeaseRecord {
  id: string;
  amount: number;
  /** ms since the epoch, by the holder's clock. */
  expiresAt: number;
}

export interface LeaseState {
  used: number;
  leases: Record<string, LeaseRecord>;
  /** The limit the last writer applied (informational, for `budget status`). */
  limit?: number;
  /** Bumped by `tollgate budget reset`. */
  resets?: number;
  updatedAt?: number;
}

export function emptyLeaseState(): LeaseState {
  return { used: 0, leases: {} };
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** Reads a stored entry; anything unreadable becomes empty fields rather than a crash. */
export function decodeLeaseState(text: string): LeaseState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return emptyLeaseState();
  }
  if (!isObject(raw)) return emptyLeaseState();
  const leases: Record<string, LeaseRecord> = {};
  if (isObject(raw.leases)) {
    for (const [k, v] of Object.entries(raw.leases)) {
      if (isObject(v) && typeof v.id === 'string') leases[k] = { id: v.id, amount: num(v.amount), expiresAt: num(v.expiresAt) };
    }
  }
  const s: LeaseState = { used: num(raw.used), leases };
  if (typeof raw.limit === 'number') s.limit = raw.limit;
  if (typeof raw.resets === 'number') s.resets = raw.resets;
  if (typeof raw.updatedAt === 'number') s.updatedAt = raw.updatedAt;
  return s;
}

export function encodeLeaseState(s: LeaseState): string {
  return JSON.stringify(s);
}

export function leasedTotal(s: LeaseState, except?: string): number {
  let n = 0;
  for (const [k, l] of Object.entries(s.leases)) if (k !== except) n += l.amount;
  return n;
}

export interface SettleRequest {
  replica: string;
  /** The lease this replica holds (as it last learned it), or null. */
  held: LeaseRecord | null;
  /** Tokens spent since `held` was granted (or since the last report), possibly more than it. */
  spent: number;
  /** Size of the lease to hold after this write; 0 gives everything back. */
  want: number;
  limit: number;
  now: number;
  ttlMs: number;
  /** Grace before another replica's lease counts as expired, for clocks that disagree. */
  skewMs: number;
  /** Id for a newly granted lease. */
  newId: string;
}

export interface SettleResult {
  state: LeaseState;
  grant: LeaseRecord | null;
  /** Tokens of expired leases written off as used by this write. */
  folded: number;
  /** Unleased tokens left after this write (negative when the budget is overdrawn). */
  available: number;
}

/**
 * One replica's report-and-renew: writes off expired leases of others, adds what this replica
 * spent to `used`, gives back the unspent rest of its lease, and grants it a fresh one of up to
 * `want` tokens from what is left.
 */
export function settle(state: LeaseState, req: SettleRequest): SettleResult {
  const s: LeaseState = { ...state, leases: { ...state.leases } };
  let folded = 0;
  for (const [rid, l] of Object.entries(s.leases)) {
    if (rid !== req.replica && l.expiresAt + req.skewMs <= req.now) {
      s.used += l.amount;
      folded += l.amount;
      delete s.leases[rid];
    }
  }
  const own = s.leases[req.replica];
  const spent = Math.max(0, req.spent);
  if (own && req.held && own.id === req.held.id) {
    s.used += spent;
  } else {
    // Our lease is not there: another replica wrote it off as fully used, so only what we spent
    // beyond it is new. A lease under our name that we do not know comes from a write of ours
    // whose acknowledgement was lost; it is written off too (wasted, never double-granted).
    s.used += Math.max(0, spent - (req.held?.amount ?? 0));
    if (own) {
      s.used += own.amount;
      folded += own.amount;
    }
  }
  delete s.leases[req.replica];
  const available = req.limit - s.used - leasedTotal(s);
  const amount = Math.floor(Math.min(req.want, Math.max(0, available)));
  let grant: LeaseRecord | null = null;
  if (amount > 0) {
    grant = { id: req.newId, amount, expiresAt: req.now + req.ttlMs };
    s.leases[req.replica] = grant;
  }
  s.limit = req.limit;
  s.updatedAt = req.now;
  return { state: s, grant, folded, available: available - amount };
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

/** `tollgate budget reset`: usage back to 0; leases stay, being reservations still in use. */
export function resetState(state: LeaseState, now: number): LeaseState {
  return { ...state, used: 0, resets: (state.resets ?? 0) + 1, updatedAt: now };
}
