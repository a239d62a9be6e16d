import type { BudgetInputEntry } from '../contract/policy.js';

/** Who a call is charged to: every budget whose scope matches is charged. */
export interface ChargeSubject {
  team: string | null;
  agent: string | null;
  sub: string | null;
  server: string;
  tool: string | null;
}

/**
 * Tokens of one piece of content. `tokens` is the count in the default encoding (o200k_base);
 * `byEncoding` carries counts in the other encodings the applicable budgets use, so a budget with
 * `tokenizer: cl100k_base` is charged in its own unit. A plain number means "default encoding,
 * for every budget".
 */
export interface TokenCount {
  tokens: number;
  byEncoding?: Readonly<Record<string, number>>;
}

export type Tokens = number | TokenCount;

export interface BudgetCheck {
  /** Every applicable budget, as given to the policy in input.budget.budgets. */
  entries: BudgetInputEntry[];
  /** The first exhausted budget with action "deny", if any: the call must be refused. */
  exhausted: BudgetInputEntry | null;
  /**
   * Why `exhausted` refuses the call, worded for the MCP client (which budget, the limit, when it
   * resets, or that shared budget state is unreachable). Set whenever `exhausted` is.
   */
  reason?: string;
  /** Budgets with action "warn" that are used up: the call goes ahead, the record notes it. */
  warnings?: BudgetInputEntry[];
}

/**
 * The budget gate the Check path uses. check() and charge() never wait on the network: shared state
 * is reached through leases held locally (see src/budget/lease.ts).
 */
/** Tokens an earlier element of the same request (a JSON-RPC batch) will spend if it goes through. */
export interface PriorClaim {
  subject: ChargeSubject;
  tokens: Tokens;
}

export interface BudgetGate {
  /**
   * `prior`: the earlier elements of the same batch; each budget counts those of them it applies
   * to on top of this call, so a batch cannot overshoot a budget by its own arguments.
   */
  check(subject: ChargeSubject, estimatedTokens: Tokens, prior?: readonly PriorClaim[]): BudgetCheck;
  charge(subject: ChargeSubject, tokens: Tokens): void;
  /**
   * Makes the state of every budget that may apply to the subject (any tool: `subject.tool` is
   * not looked at) ready for check(): with shared state, this replica's first lease on each. Null
   * when everything is ready already, so Check awaits nothing on its usual path; otherwise the
   * promise resolves (never rejects) once ready, or after the store's timeout, when check()
   * explains what is missing.
   */
  prepare?(subject: ChargeSubject): Promise<void> | null;
  close(): Promise<void>;
  /**
   * Counts a value (tool arguments, a result) in every encoding the subject's budgets use, so
   * check()/charge() can charge each budget in its own tokenizer. Optional: without it, callers
   * pass a number in the default encoding. 0 tokens, without tokenizing, when no budget applies
   * to the subject: there is nothing to charge, and Check must not pay for counting.
   */
  measure?(subject: ChargeSubject, value: unknown): TokenCount;
  /** Encodings the subject's applicable budgets count in (always includes the default). */
  encodingsFor?(subject: ChargeSubject): readonly string[];
}
