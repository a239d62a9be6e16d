import type { BudgetSpec } from './config.js';
import { applicableBudgets, budgetsForAnyTool, evaluateBudgets, scopeMatches, tokensIn, type BudgetStanding } from './ledger.js';
import type { BudgetStore } from './store.js';
import { DEFAULT_ENCODING, measureValue, measureValueAsync } from './tokens.js';
import type { BudgetCheck, BudgetGate, ChargeSubject, PriorClaim, TokenCount, Tokens } from './types.js';
import { WindowCache } from './window.js';

/** Prometheus-ready counters (monotonic), keyed by budget name. */
export interface BudgetMetrics {
  /** Tokens charged to each budget. */
  readonly chargedTokens: Map<string, number>;
  /** Calls refused by each budget. */
  readonly denials: Map<string, number>;
  /** Shared state only: lease syncs that other replicas' writes crowded out, per budget (the store's). */
  readonly leaseContention?: ReadonlyMap<string, number>;
}

export interface TollgateBudgetGate extends BudgetGate {
  prepare(subject: ChargeSubject): Promise<void> | null;
  measure(subject: ChargeSubject, value: unknown): TokenCount;
  /** Like measure(), without holding the event loop on large values (results, manifests). */
  measureAsync(subject: ChargeSubject, value: unknown): Promise<TokenCount>;
  encodingsFor(subject: ChargeSubject): readonly string[];
  readonly budgets: readonly BudgetSpec[];
  readonly metrics: BudgetMetrics;
  /** Swaps the budgets in force (published definitions changed); the next check() uses them. */
  setBudgets(specs: readonly BudgetSpec[]): void;
}

export interface BudgetGateOptions {
  clock?: () => number;
}

const SUBJECT_CACHE_MAX = 10_000;

function subjectKey(s: ChargeSubject): string {
  return `${s.team ?? ''}\u0000${s.agent ?? ''}\u0000${s.sub ?? ''}\u0000${s.server}\u0000${s.tool ?? ''}`;
}

/**
 * The budget gate Check uses: pure accounting (ledger.ts) over a store (local or NATS). check()
 * and charge() are synchronous and do no I/O; the store persists or replicates afterwards.
 */
export function createBudgetGate(cfg: { budgets: readonly BudgetSpec[] }, store: BudgetStore, opts: BudgetGateOptions = {}): TollgateBudgetGate {
  const clock = opts.clock ?? Date.now;
  const windows = new WindowCache();
  const budgets = [...cfg.budgets];
  const applicable = new Map<string, { specs: BudgetSpec[]; encodings: string[] }>();
  const metrics: BudgetMetrics = {
    chargedTokens: new Map(), denials: new Map(), ...(store.leaseContention ? { leaseContention: store.leaseContention } : {}),
  };

  const forSubject = (subject: ChargeSubject): { specs: BudgetSpec[]; encodings: string[] } => {
    const key = subjectKey(subject);
    let hit = applicable.get(key);
    if (!hit) {
      const specs = applicableBudgets(budgets, subject);
      hit = { specs, encodings: [...new Set([DEFAULT_ENCODING, ...specs.map((s) => s.tokenizer)])] };
      if (applicable.size >= SUBJECT_CACHE_MAX) applicable.clear();
      applicable.set(key, hit);
    }
    return hit;
  };

  const bump = (m: Map<string, number>, k: string, n: number): void => { m.set(k, (m.get(k) ?? 0) + n); };

  // Per caller (any tool): the budgets prepare() makes ready. Same bounds as `applicable`.
  const anyTool = new Map<string, BudgetSpec[]>();
  const forAnyTool = (subject: ChargeSubject): BudgetSpec[] => {
    const key = subjectKey({ ...subject, tool: null });
    let hit = anyTool.get(key);
    if (!hit) {
      hit = budgetsForAnyTool(budgets, subject);
      if (anyTool.size >= SUBJECT_CACHE_MAX) anyTool.clear();
      anyTool.set(key, hit);
    }
    return hit;
  };

  return {
    budgets,
    metrics,

    check(subject: ChargeSubject, estimatedTokens: Tokens, prior: readonly PriorClaim[] = []): BudgetCheck {
      const { specs } = forSubject(subject);
      if (specs.length === 0) return { entries: [], exhausted: null };
      const now = clock();
      const standings: BudgetStanding[] = specs.map((spec) => {
        const window = windows.get(spec.window, spec.timezone, now);
        // Earlier elements of the same batch: spent already, as far as this call is concerned.
        let claimed = 0;
        for (const p of prior) if (scopeMatches(spec, p.subject)) claimed += tokensIn(p.tokens, spec.tokenizer);
        const usage = store.usage(spec, window, now, tokensIn(estimatedTokens, spec.tokenizer) + claimed);
        if (claimed === 0) return { spec, window, usage };
        return { spec, window, usage: { ...usage, used: usage.used + claimed, spendable: Math.max(0, usage.spendable - claimed) } };
      });
      const result = evaluateBudgets(standings, estimatedTokens);
      if (result.exhausted) bump(metrics.denials, result.exhausted.name, 1);
      return result;
    },

    prepare(subject: ChargeSubject): Promise<void> | null {
      if (!store.prepare) return null;
      const specs = forAnyTool(subject);
      if (specs.length === 0) return null;
      const now = clock();
      let waits: Array<Promise<void>> | null = null;
      for (const spec of specs) {
        const w = store.prepare(spec, windows.get(spec.window, spec.timezone, now));
        if (w) (waits ??= []).push(w);
      }
      return waits === null ? null : Promise.all(waits).then(() => undefined);
    },

    charge(subject: ChargeSubject, tokens: Tokens): void {
      const { specs } = forSubject(subject);
      if (specs.length === 0) return;
      const now = clock();
      for (const spec of specs) {
        const n = tokensIn(tokens, spec.tokenizer);
        if (!(n > 0)) continue;
        store.spend(spec, windows.get(spec.window, spec.timezone, now), n, now);
        bump(metrics.chargedTokens, spec.name, n);
      }
    },

    measure(subject: ChargeSubject, value: unknown): TokenCount {
      // The tokenizer is the costliest step of a call's check: it runs only for a caller some budget applies to.
      const { specs, encodings } = forSubject(subject);
      return specs.length === 0 ? { tokens: 0 } : measureValue(value, encodings);
    },

    measureAsync(subject: ChargeSubject, value: unknown): Promise<TokenCount> {
      return measureValueAsync(value, forSubject(subject).encodings);
    },

    encodingsFor(subject: ChargeSubject): readonly string[] {
      return forSubject(subject).encodings;
    },

    setBudgets(specs: readonly BudgetSpec[]): void {
      // In place: `budgets` is the array status and metrics already hold.
      budgets.splice(0, budgets.length, ...specs);
      applicable.clear();
      anyTool.clear();
    },

    close(): Promise<void> {
      return store.close();
    },
  };
}
