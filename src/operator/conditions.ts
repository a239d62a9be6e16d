import { canonicalize } from '../decisionlog/canonical.js';
import type { Condition } from './types.js';

/**
 * Sets one condition in a list, the Kubernetes way: lastTransitionTime only moves when the status
 * changes, so watchers can tell how long something has been failing. Pure; returns a new list.
 */
export function setCondition(list: readonly Condition[] | undefined, next: Omit<Condition, 'lastTransitionTime'>, now: Date): Condition[] {
  const out = (list ?? []).filter((c) => c.type !== next.type);
  const prev = (list ?? []).find((c) => c.type === next.type);
  const lastTransitionTime = prev && prev.status === next.status ? prev.lastTransitionTime : now.toISOString();
  out.push({ ...next, lastTransitionTime });
  return out.sort((a, b) => a.type.localeCompare(b.type));
}

/** The condition of a type, if present. */
export function conditionOf(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return (list ?? []).find((c) => c.type === type);
}

/** Equal ignoring lastTransitionTime: used to skip status writes that would change nothing. */
export function sameConditions(a: readonly Condition[] | undefined, b: readonly Condition[] | undefined): boolean {
  // Canonical JSON: the API server hands fields back in its own order, not ours.
  const strip = (l: readonly Condition[] | undefined): string => canonicalize((l ?? []).map(({ lastTransitionTime: _t, ...rest }) => rest));
  return strip(a) === strip(b);
}
