import type { BudgetSpec } from './config.js';
import type { BudgetWindow } from './window.js';

/** How one budget stands in one window, as this process can tell without any I/O. */
export interface BudgetUsage {
  /** The limit in force: the declared one, or an override from `tollgate budget set`. */
  limit: number;
  /** Tokens used in the window (with shared state: including what other replicas hold leased). */
  used: number;
  /** Tokens this process may let through right now without asking anyone. */
  spendable: number;
  /**
   * Set when nothing may be let through for a reason other than the budget being used up (shared
   * state unreachable, lease expired); worded for the MCP client.
   */
  unavailable?: string;
}

/**
 * Where usage lives. Both methods are synchronous and local: the in-process store writes to disk
 * later, the NATS store replicates through leases in the background.
 */
export interface BudgetStore {
  /**
   * `need`: tokens the call about to be judged brings (its arguments). A lease-based store uses it
   * to make its next lease large enough for that call.
   */
  usage(spec: BudgetSpec, window: BudgetWindow, now: number, need?: number): BudgetUsage;
  spend(spec: BudgetSpec, window: BudgetWindow, tokens: number, now: number): void;
  /**
   * Stores that load a budget's state on first use (NATS: the first lease): start loading it, and
   * resolve once usage() can answer, or after a bounded wait. Null when nothing needs loading.
   */
  prepare?(spec: BudgetSpec, window: BudgetWindow): Promise<void> | null;
  close(): Promise<void>;
  /**
   * Shared stores only: per budget name, lease syncs that lost every compare-and-set round to
   * other replicas since start (a live map, read at scrape).
   */
  readonly leaseContention?: ReadonlyMap<string, number>;
}

/** What `tollgate budget status` shows for one budget. */
export interface BudgetStatusRow {
  name: string;
  scope: Record<string, string>;
  window: string;
  windowKey: string;
  timezone: string;
  action: 'deny' | 'warn';
  limit: number;
  /** The limit in the budgets file, when `tollgate budget set` overrides it. */
  declaredLimit: number;
  used: number;
  remaining: number;
  resetsAt: string;
  /** Tokens currently leased to replicas (NATS only). */
  leased?: number;
}

/** Operator actions on stored budget state (the CLI), for either store. */
export interface BudgetAdmin {
  status(now: number): Promise<BudgetStatusRow[]>;
  /** Overrides the declared limit of a budget, for this and later windows. */
  setLimit(name: string, limit: number): Promise<void>;
  /** Sets the budget's usage in the current window back to 0. */
  reset(name: string, now: number): Promise<void>;
  close(): Promise<void>;
}
