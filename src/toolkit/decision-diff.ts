import type { Decision } from '../contract/policy.js';

/** How two decisions for the same input differ (WASM vs interpreter, old vs new policy). Pure. */

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sb = new Set(b);
  const sa = new Set(a);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

function sameHeaders(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

/** Names of the fields that differ: allow, reasons, headers, http_status, mask, cost. */
export function decisionDifferences(a: Decision, b: Decision): string[] {
  const out: string[] = [];
  if (a.allow !== b.allow) out.push('allow');
  if (!sameSet(a.reasons, b.reasons)) out.push('reasons');
  if (!sameHeaders(a.headers, b.headers)) out.push('headers');
  if (a.httpStatus !== b.httpStatus) out.push('http_status');
  if (!sameSet(a.mask, b.mask)) out.push('mask');
  if (a.cost !== b.cost) out.push('cost');
  return out;
}

export const verdict = (allow: boolean): string => (allow ? 'ALLOW' : 'DENY');
