import type { BudgetSpec } from '../../src/budget/config.js';
import { DEFAULT_ENCODING } from '../../src/budget/tokens.js';

/**
 * The pure part of `make bench-nats-scale`: who does what at which rate. Every simulated sidecar's
 * traffic comes from a seeded generator, so two runs with one seed offer the same calls in the
 * same order (the timing still depends on the machine).
 */

export interface TrafficPlan {
  /** Simulated sidecars (authz instances, one per MCP server pod). */
  sidecars: number;
  /** Team budgets declared mesh-wide; every sidecar holds a lease on each, as authz does. */
  budgets: number;
  /** How many of the teams call any one sidecar's server. */
  teamsPerSidecar: number;
  /** Tool calls per second per sidecar (Poisson arrivals). */
  callsPerSec: number;
  /** Tokens of a call's arguments, inclusive range. */
  argsTokens: [number, number];
  /** Tokens of a call's result, inclusive range: the largest is R of the overshoot bound. */
  resultTokens: [number, number];
  /** How long a call is in flight (the MCP server working), inclusive range in ms. */
  callMs: [number, number];
  /** Seconds of traffic measured. */
  trafficSec: number;
  /** Fraction of the run after which, at the planned rate, each budget is used up (0..1]. */
  exhaustAt: number;
}

export const DEFAULT_PLAN: Omit<TrafficPlan, 'sidecars'> = {
  budgets: 4,
  teamsPerSidecar: 2,
  callsPerSec: 1,
  argsTokens: [20, 200],
  resultTokens: [50, 2000],
  callMs: [20, 300],
  trafficSec: 30,
  exhaustAt: 0.6,
};

export class PlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanError';
  }
}

function range(name: string, r: [number, number]): void {
  if (!Number.isFinite(r[0]) || !Number.isFinite(r[1]) || r[0] < 0 || r[1] < r[0]) throw new PlanError(`${name} must be MIN-MAX with 0 ≤ MIN ≤ MAX, got ${r.join('-')}`);
}

/** Refuses a plan that cannot run, saying which field is wrong. */
export function checkPlan(p: TrafficPlan): TrafficPlan {
  const whole = (name: string, v: number, min: number, max: number): void => {
    if (!Number.isSafeInteger(v) || v < min || v > max) throw new PlanError(`${name} must be a whole number from ${min} to ${max}, got ${v}`);
  };
  whole('sidecars', p.sidecars, 1, 5000);
  whole('budgets', p.budgets, 1, 100);
  whole('teams per sidecar', p.teamsPerSidecar, 1, p.budgets);
  if (!(p.callsPerSec > 0 && p.callsPerSec <= 100)) throw new PlanError(`calls per second per sidecar must be in (0, 100], got ${p.callsPerSec}`);
  range('argument tokens', p.argsTokens);
  range('result tokens', p.resultTokens);
  range('call time (ms)', p.callMs);
  if (!(p.trafficSec >= 1 && p.trafficSec <= 3600)) throw new PlanError(`traffic seconds must be from 1 to 3600, got ${p.trafficSec}`);
  if (!(p.exhaustAt > 0 && p.exhaustAt <= 10)) throw new PlanError(`exhaust-at must be in (0, 10], got ${p.exhaustAt}`);
  return p;
}

/** The budgets (team names) whose callers reach sidecar i: consecutive teams, wrapping. */
export function teamsOf(sidecar: number, p: Pick<TrafficPlan, 'budgets' | 'teamsPerSidecar'>): number[] {
  const out: number[] = [];
  for (let k = 0; k < p.teamsPerSidecar; k++) out.push((sidecar + k) % p.budgets);
  return out;
}

/** How many sidecars serve callers of team t (their calls can charge its budget). */
export function sidecarsCharging(team: number, p: Pick<TrafficPlan, 'sidecars' | 'budgets' | 'teamsPerSidecar'>): number {
  let n = 0;
  for (let i = 0; i < p.sidecars; i++) if (teamsOf(i, p).includes(team)) n++;
  return n;
}

/**
 * Calls a second one sidecar makes: it waits a Poisson gap (mean 1/callsPerSec) after each call
 * returns, and a call takes callMs on average, so calls come a little slower than callsPerSec.
 */
export function effectiveCallRate(p: Pick<TrafficPlan, 'callsPerSec' | 'callMs'>): number {
  return 1 / (1 / p.callsPerSec + (p.callMs[0] + p.callMs[1]) / 2000);
}

/**
 * Each budget's limit: what its callers would spend at the planned rate in `exhaustAt` of the
 * run, so budgets run out while traffic goes on and the overshoot past the limit is measured.
 */
export function budgetLimit(team: number, p: TrafficPlan): number {
  const perCall = (p.argsTokens[0] + p.argsTokens[1] + p.resultTokens[0] + p.resultTokens[1]) / 2;
  const callsPerSec = (sidecarsCharging(team, p) * effectiveCallRate(p)) / p.teamsPerSidecar;
  return Math.max(1, Math.round(callsPerSec * perCall * p.trafficSec * p.exhaustAt));
}

/**
 * The documented worst case (docs/budgets.md, "Worst-case overshoot"): C calls in flight over all
 * replicas, results of at most R tokens. A simulated sidecar runs its calls one after the other
 * and charges a result before its next Check, so C is the number of sidecars charging the budget.
 */
export function overshootBound(sidecarsOnBudget: number, maxResultTokens: number, callsInFlightPerSidecar = 1): number {
  return sidecarsOnBudget * callsInFlightPerSidecar * maxResultTokens;
}

/** Splits sidecars 0..n-1 into `parts` contiguous ranges of near-equal size (no empty range). */
export function splitRanges(n: number, parts: number): Array<{ from: number; to: number }> {
  const k = Math.max(1, Math.min(parts, n));
  const out: Array<{ from: number; to: number }> = [];
  for (let j = 0; j < k; j++) out.push({ from: Math.floor((j * n) / k), to: Math.floor(((j + 1) * n) / k) });
  return out;
}

/** A small seeded generator (mulberry32): the same seed gives the same traffic. */
export { mulberry32 as seededRandom } from '../../test/support/prng.js';

/** Wait before the next call of a Poisson stream of `perSec` calls a second. */
export function poissonGapMs(rand: () => number, perSec: number): number {
  return (-Math.log(1 - rand()) / perSec) * 1000;
}

export function uniformInt(rand: () => number, r: readonly [number, number]): number {
  return r[0] + Math.floor(rand() * (r[1] - r[0] + 1));
}

/** "20-200" → [20, 200]; a single number is a range of one. */
export function parseRange(text: string, name: string): [number, number] {
  const m = /^(\d{1,9})(?:-(\d{1,9}))?$/.exec(text.trim());
  if (!m) throw new PlanError(`${name} must be N or MIN-MAX (whole numbers), got "${text}"`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  const r: [number, number] = [lo, hi];
  range(name, r);
  return r;
}

/** "10,100,1000" → [10, 100, 1000]. */
export function parseCounts(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (parts.length === 0) throw new PlanError('--n needs at least one sidecar count, e.g. 10,100,1000');
  return parts.map((s) => {
    if (!/^\d{1,5}$/.test(s) || Number(s) < 1) throw new PlanError(`--n: "${s}" is not a sidecar count (a whole number ≥ 1)`);
    return Number(s);
  });
}

/** The declared budgets of a run: one per team, per day, limits from budgetLimit(). */
export function budgetSpecs(names: readonly string[], p: TrafficPlan): BudgetSpec[] {
  return names.map((name, team) => ({
    name, scope: { team: `team-${team}` }, limit: budgetLimit(team, p), window: 'day', timezone: 'UTC', action: 'deny', tokenizer: DEFAULT_ENCODING,
  }));
}
