import type { Registry } from 'prom-client';
import type { BudgetMetrics } from '../budget/gate.js';
import type { BudgetInputEntry } from '../contract/policy.js';
import { OVERFLOW_LABEL } from './bounded.js';
import { scrapedCounter, scrapedGauge, type Sample } from './scrape.js';

/** The part of a Check's budget entries the gauges need (what input.budget carries). */
export type BudgetStandingEntry = Pick<BudgetInputEntry, 'name' | 'limit' | 'remaining' | 'resets_at'>;

interface Standing {
  labels: { budget: string };
  limit: number;
  remaining: number;
  resetsAt: string;
  /** The gate's charged count for this budget when `remaining` was seen. */
  chargedThen: number;
}

function estimate(s: Standing, now: number, counts: ReadonlyMap<string, number> | undefined): number {
  const resets = Date.parse(s.resetsAt);
  // A new window started and no Check has looked since: nothing is known to be spent in it.
  if (Number.isFinite(resets) && now >= resets) return s.limit;
  const since = (counts?.get(s.labels.budget) ?? 0) - s.chargedThen;
  return Math.max(0, s.remaining - Math.max(0, since));
}

/**
 * The latest standing of each budget as Checks saw it. The gate does not expose its store (and
 * reading a NATS-backed store may start a lease refill), so the Check path hands over the entries
 * it computed anyway; tokens charged since (response bodies via ext_proc) are subtracted at scrape.
 */
export class BudgetStandings {
  private readonly byName = new Map<string, Standing>();

  constructor(private readonly max: number, private readonly charged: () => BudgetMetrics | null) {}

  /** Hot path: one Map lookup and four stores per applicable budget. */
  record(entries: readonly BudgetStandingEntry[]): void {
    if (entries.length === 0) return;
    const counts = this.charged()?.chargedTokens;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      let s = this.byName.get(e.name);
      if (s === undefined) {
        // Budget names come from the budgets file; the cap only guards against a runaway config.
        if (this.byName.size >= this.max) continue;
        s = { labels: { budget: e.name }, limit: 0, remaining: 0, resetsAt: '', chargedThen: 0 };
        this.byName.set(e.name, s);
      }
      s.limit = e.limit;
      s.remaining = e.remaining;
      s.resetsAt = e.resets_at;
      s.chargedThen = counts?.get(e.name) ?? 0;
    }
  }

  /** Remaining tokens per budget as best known now (this replica's view). */
  remaining(now: number): Sample[] {
    const counts = this.charged()?.chargedTokens;
    const out: Sample[] = [];
    for (const s of this.byName.values()) out.push({ labels: s.labels, value: estimate(s, now, counts) });
    return out;
  }

  remainingByName(now: number): Map<string, number> {
    const counts = this.charged()?.chargedTokens;
    const out = new Map<string, number>();
    for (const s of this.byName.values()) out.set(s.labels.budget, estimate(s, now, counts));
    return out;
  }

  limits(): Sample[] {
    const out: Sample[] = [];
    for (const s of this.byName.values()) out.push({ labels: s.labels, value: s.limit });
    return out;
  }
}

/** Per-budget series from one of the gate's counters, at most `max` names, the rest summed as "other". */
function perBudget(counts: ReadonlyMap<string, number> | undefined, max: number): Sample[] {
  if (!counts) return [];
  const out: Sample[] = [];
  let rest = 0;
  let overflow = false;
  for (const [name, n] of counts) {
    if (out.length < max && name !== OVERFLOW_LABEL) out.push({ labels: { budget: name }, value: n });
    else { rest += n; overflow = true; }
  }
  if (overflow) out.push({ labels: { budget: OVERFLOW_LABEL }, value: rest });
  return out;
}

export function registerBudgetMetrics(registry: Registry, prefix: string, opts: {
  max: number;
  read: () => BudgetMetrics | null;
  standings: BudgetStandings;
  clock: () => number;
}): void {
  scrapedCounter({
    registry, name: `${prefix}budget_tokens_charged_total`, labelNames: ['budget'],
    help: 'Tokens charged to each budget by this instance since start (arguments at Check, results and tool lists from responses), in the budget\'s own tokenizer.',
    read: () => perBudget(opts.read()?.chargedTokens, opts.max),
  });
  scrapedCounter({
    registry, name: `${prefix}budget_denials_total`, labelNames: ['budget'],
    help: 'Calls this instance refused because the budget was exhausted or its shared state unreachable.',
    read: () => perBudget(opts.read()?.denials, opts.max),
  });
  scrapedCounter({
    registry, name: `${prefix}budget_lease_contention_total`, labelNames: ['budget'],
    help: 'Shared budgets only: lease syncs of this instance that lost every compare-and-set round to other replicas (the lease held is kept, the sync retried later; not counted as NATS unreachable).',
    read: () => perBudget(opts.read()?.leaseContention, opts.max),
  });
  scrapedGauge({
    registry, name: `${prefix}budget_remaining_tokens`, labelNames: ['budget'],
    help: 'Tokens left in each budget\'s current window, as this instance last saw it minus what it charged since.',
    read: () => opts.standings.remaining(opts.clock()),
  });
  scrapedGauge({
    registry, name: `${prefix}budget_limit_tokens`, labelNames: ['budget'],
    help: 'Each budget\'s limit per window (declared, or as set with `tollgate budget set`).',
    read: () => opts.standings.limits(),
  });
}
