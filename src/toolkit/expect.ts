import type { Decision } from '../contract/policy.js';
import type { Expectation } from './scenario-types.js';

/** Comparing a decision with what a scenario expects. Pure. */

export interface Mismatch {
  field: 'allow' | 'reasons' | 'reasons_contain' | 'status' | 'headers' | 'mask' | 'cost';
  expected: string;
  actual: string;
}

const show = (v: unknown): string => JSON.stringify(v) ?? 'undefined';

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

function listOf(xs: readonly string[]): string {
  return xs.length ? xs.map((x) => show(x)).join(', ') : '(none)';
}

export function compareDecision(e: Expectation, d: Decision): Mismatch[] {
  const out: Mismatch[] = [];
  if (e.allow !== undefined && e.allow !== d.allow) {
    out.push({ field: 'allow', expected: String(e.allow), actual: String(d.allow) });
  }
  if (e.reasons !== undefined && !sameSet(e.reasons, d.reasons)) {
    out.push({ field: 'reasons', expected: listOf(e.reasons), actual: listOf(d.reasons) });
  }
  for (const needle of e.reasonsContain ?? []) {
    if (!d.reasons.some((r) => r.includes(needle))) {
      out.push({ field: 'reasons_contain', expected: `a reason containing ${show(needle)}`, actual: listOf(d.reasons) });
    }
  }
  if (e.status !== undefined && e.status !== d.httpStatus) {
    out.push({ field: 'status', expected: e.status === null ? 'no http_status' : String(e.status), actual: d.httpStatus === null ? 'no http_status' : String(d.httpStatus) });
  }
  for (const [name, want] of Object.entries(e.headers ?? {})) {
    const got = Object.entries(d.headers).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
    if (want === null ? got !== undefined : got !== want) {
      out.push({ field: 'headers', expected: want === null ? `no header ${name}` : `${name}: ${show(want)}`, actual: got === undefined ? `no header ${name}` : `${name}: ${show(got)}` });
    }
  }
  if (e.mask !== undefined && !sameSet(e.mask, d.mask)) {
    out.push({ field: 'mask', expected: listOf(e.mask), actual: listOf(d.mask) });
  }
  if (e.cost !== undefined && e.cost !== d.cost) {
    out.push({ field: 'cost', expected: e.cost === null ? 'no cost' : String(e.cost), actual: d.cost === null ? 'no cost' : String(d.cost) });
  }
  return out;
}
