/**
 * Why the budget gate refused a simulated call, from its reason text (src/budget/ledger.ts and
 * nats-store.ts word them): the budget is used up, this replica is between leases, or the shared
 * state counts as unreachable (budgets fail closed). Only the first is the budget doing its job.
 */
export type RefusalKind = 'exhausted' | 'renewing' | 'unreachable';

export function refusalKind(reason: string | undefined): RefusalKind {
  const r = reason ?? '';
  if (r.includes('is unreachable')) return 'unreachable';
  if (r.includes('retry in a moment') || r.includes('holds no lease')) return 'renewing';
  return 'exhausted';
}

export type RefusalCounts = Record<RefusalKind, number>;

export const noRefusals = (): RefusalCounts => ({ exhausted: 0, renewing: 0, unreachable: 0 });
