import type { BudgetInputEntry } from '../policy/types.js';

/** Who a call is charged to: every budget whose scope matches is charged. */
export interface ChargeSubject {
  team: string | null;
  agent: string | null;
  sub: string | null;
  server: string;
  tool: string | null;
}

export interface BudgetCheck {
  /** Every applicable budget, as given to the policy in input.budget.budgets. */
  entries: BudgetInputEntry[];
  /** The first exhausted budget with action "deny", if any: the call must be refused. */
  exhausted: BudgetInputEntry | null;
}

/**
 * The budget gate the Check path uses. check() and charge() never wait on the network: shared state
 * is reached through leases held locally (see src/budget/lease.ts).
 */
export interface BudgetGate {
  check(subject: ChargeSubject, estimatedTokens: number): BudgetCheck;
  charge(subject: ChargeSubject, tokens: number): void;
  close(): Promise<void>;
}
