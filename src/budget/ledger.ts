import type { BudgetInputEntry } from '../contract/policy.js';
import { SCOPE_FIELDS, type BudgetSpec } from './config.js';
import type { BudgetUsage } from './store.js';
import type { BudgetCheck, ChargeSubject, Tokens } from './types.js';
import type { BudgetWindow } from './window.js';

/** Pure budget accounting: which budgets apply to a caller, and what they say about a call. */

export function scopeMatches(spec: BudgetSpec, subject: ChargeSubject): boolean {
  for (const f of SCOPE_FIELDS) {
    const want = spec.scope[f];
    if (want !== undefined && subject[f] !== want) return false;
  }
  return true;
}

export function applicableBudgets(specs: readonly BudgetSpec[], subject: ChargeSubject): BudgetSpec[] {
  return specs.filter((s) => scopeMatches(s, subject));
}

/** The budgets that apply to a caller's call of some tool: the scope's `tool` is not looked at. */
export function budgetsForAnyTool(specs: readonly BudgetSpec[], subject: ChargeSubject): BudgetSpec[] {
  return specs.filter((s) => scopeMatches(s, { ...subject, tool: s.scope.tool ?? null }));
}

/** Tokens to charge a budget counting in `encoding`. */
export function tokensIn(t: Tokens, encoding: string): number {
  if (typeof t === 'number') return t;
  return t.byEncoding?.[encoding] ?? t.tokens;
}

export function scopeRecord(spec: BudgetSpec): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of SCOPE_FIELDS) if (spec.scope[f] !== undefined) out[f] = spec.scope[f]!;
  return out;
}

export function budgetEntry(spec: BudgetSpec, window: BudgetWindow, usage: BudgetUsage): BudgetInputEntry {
  return {
    name: spec.name,
    scope: scopeRecord(spec),
    limit: usage.limit,
    used: usage.used,
    remaining: Math.max(0, usage.limit - usage.used),
    window: spec.window,
    resets_at: new Date(window.end).toISOString(),
    action: spec.action,
  };
}

export interface BudgetStanding {
  spec: BudgetSpec;
  window: BudgetWindow;
  usage: BudgetUsage;
}

type Verdict = { ok: true } | { ok: false; reason: string; spent: boolean };

/** Whether a budget lets a call through that brings `need` tokens of arguments. */
export function judgeBudget(s: BudgetStanding, need: number): Verdict {
  const { spec, usage } = s;
  const resets = new Date(s.window.end).toISOString();
  if (usage.unavailable) return { ok: false, reason: usage.unavailable, spent: false };
  const remaining = usage.limit - usage.used;
  if (remaining <= 0) {
    return { ok: false, spent: true, reason: `budget "${spec.name}" is exhausted: ${usage.used} of ${usage.limit} tokens used this ${spec.window}; it resets at ${resets}` };
  }
  if (need > remaining) {
    return { ok: false, spent: false, reason: `budget "${spec.name}" has ${remaining} of ${usage.limit} tokens left this ${spec.window}, and this call's arguments alone count ${need}; it resets at ${resets}` };
  }
  if (usage.spendable > 0 && need <= usage.spendable) return { ok: true };
  // The budget has room, but not in this replica's lease: the background refill is on its way.
  return { ok: false, spent: false, reason: `budget "${spec.name}": this authz replica is renewing its share of the budget (${remaining} of ${usage.limit} tokens left this ${spec.window}); retry in a moment` };
}

/**
 * The budget part of a Check: every applicable budget as policy input, and the first `deny`
 * budget that refuses the call. `warn` budgets never refuse; used-up ones are listed as warnings.
 */
export function evaluateBudgets(standings: readonly BudgetStanding[], estimated: Tokens): BudgetCheck {
  const entries: BudgetInputEntry[] = [];
  let exhausted: BudgetInputEntry | null = null;
  let reason: string | undefined;
  let warnings: BudgetInputEntry[] | undefined;
  for (const s of standings) {
    const entry = budgetEntry(s.spec, s.window, s.usage);
    entries.push(entry);
    const verdict = judgeBudget(s, tokensIn(estimated, s.spec.tokenizer));
    if (verdict.ok) continue;
    if (s.spec.action === 'warn') {
      if (verdict.spent) (warnings ??= []).push(entry);
    } else if (!exhausted) {
      exhausted = entry;
      reason = verdict.reason;
    }
  }
  const out: BudgetCheck = { entries, exhausted };
  if (reason !== undefined) out.reason = reason;
  if (warnings) out.warnings = warnings;
  return out;
}
