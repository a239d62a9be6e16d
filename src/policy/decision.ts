import type { Decision } from '../contract/policy.js';
import { isObject } from '../util/object.js';

/**
 * Turning what a policy returned into a Decision. Pure and total: any value gives a Decision, and
 * anything that is not a well-formed decision denies with a reason naming what was wrong (fail
 * closed), because an allow must never come from a value we had to guess at.
 */

export const DECISION_SHAPE = '{"allow": boolean, "reasons": [string], "headers"?: {string: string}, "http_status"?: number, "mask"?: [string], "cost"?: number}';
export const ENVOY_SHAPE = 'a boolean or {"allowed": boolean, "headers"?: {...}, "body"?: string, "http_status"?: number}';

export const NO_REASON = 'denied by policy (the policy gave no reason)';

export function deny(reason: string, extra: Partial<Decision> = {}): Decision {
  return { allow: false, reasons: [reason], headers: {}, httpStatus: null, mask: [], cost: null, ...extra };
}

export function invalidDecision(what: string, expected: string = DECISION_SHAPE): Decision {
  return deny(`policy returned an invalid decision: ${what}; expected ${expected}`);
}

function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return `${typeof v} ${s.length > 60 ? s.slice(0, 57) + '...' : s}`;
}

/** Each check returns an error string, or null when the field is fine. */
function stringList(v: unknown, field: string): string | null {
  if (!Array.isArray(v)) return `"${field}" is ${describe(v)}, not an array or set of strings`;
  const bad = v.find((x) => typeof x !== 'string');
  return bad === undefined ? null : `"${field}" contains ${describe(bad)}, but only strings are allowed`;
}

function httpStatus(v: unknown, field: string): string | null {
  return typeof v === 'number' && Number.isInteger(v) && v >= 100 && v <= 599 ? null : `"${field}" is ${describe(v)}, not an HTTP status code (100-599)`;
}

function stringMap(v: unknown, field: string): string | null {
  if (!isObject(v)) return `"${field}" is ${describe(v)}, not an object of strings`;
  for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') return `header "${k}" in "${field}" is ${describe(x)}, not a string`;
  return null;
}

/** Reasons arrive as an array (or a set, which JSON makes an array); the order of a set is OPA's. */
function dedupe(xs: string[]): string[] {
  return xs.length < 2 ? xs : [...new Set(xs)];
}

/** A decision object or a bare boolean, as the tollgate.authz contract defines it. */
export function normaliseDecision(raw: unknown): Decision {
  if (raw === true) return { allow: true, reasons: [], headers: {}, httpStatus: null, mask: [], cost: null };
  if (raw === false) return deny(NO_REASON);
  if (!isObject(raw)) return invalidDecision(`it is ${describe(raw)}`);
  if (typeof raw.allow !== 'boolean') return invalidDecision(`"allow" is ${describe(raw.allow)}, not a boolean`);

  const problems = [
    raw.reasons === undefined ? null : stringList(raw.reasons, 'reasons'),
    raw.headers === undefined ? null : stringMap(raw.headers, 'headers'),
    raw.http_status === undefined ? null : httpStatus(raw.http_status, 'http_status'),
    raw.mask === undefined ? null : stringList(raw.mask, 'mask'),
    raw.cost === undefined || (typeof raw.cost === 'number' && Number.isFinite(raw.cost) && raw.cost >= 0) ? null : `"cost" is ${describe(raw.cost)}, not a number of tokens >= 0`,
  ].filter((p): p is string => p !== null);
  if (problems.length) return invalidDecision(problems.join('; '));

  const reasons = dedupe((raw.reasons as string[] | undefined) ?? []);
  return {
    allow: raw.allow,
    reasons: !raw.allow && reasons.length === 0 ? [NO_REASON] : reasons,
    headers: { ...((raw.headers as Record<string, string> | undefined) ?? {}) },
    httpStatus: (raw.http_status as number | undefined) ?? null,
    mask: (raw.mask as string[] | undefined) ?? [],
    cost: (raw.cost as number | undefined) ?? null,
  };
}

/** opa-envoy-plugin header values: a string, a list of strings, or a list of such objects. */
function envoyHeaders(v: unknown): { headers: Record<string, string> } | { error: string } {
  const out: Record<string, string> = {};
  const objects = Array.isArray(v) ? v : [v];
  for (const o of objects) {
    if (!isObject(o)) return { error: `"headers" is ${describe(o)}, not an object` };
    for (const [k, x] of Object.entries(o)) {
      const values = typeof x === 'string' ? [x] : Array.isArray(x) && x.every((s) => typeof s === 'string') ? (x as string[]) : null;
      if (values === null) return { error: `header "${k}" is ${describe(x)}, not a string or a list of strings` };
      // Repeated headers are folded into one comma-separated value (RFC 9110, 5.3).
      out[k] = out[k] === undefined ? values.join(', ') : [out[k], ...values].join(', ');
    }
  }
  return { headers: out };
}

/**
 * The result of an opa-envoy-plugin policy's `envoy.authz.allow`: a boolean, or an object with
 * `allowed`, `headers`, `body` and `http_status` as that plugin reads them. `body` (the plugin's
 * denial response body) becomes the reason. Other plugin fields (request_headers_to_remove,
 * response_headers_to_add, query_parameters_to_*, dynamic_metadata) have no equivalent here and
 * are ignored.
 */
export function normaliseEnvoyCompat(raw: unknown): Decision {
  if (raw === true) return normaliseDecision(true);
  if (raw === false) return deny('denied by envoy.authz.allow');
  if (!isObject(raw)) return invalidDecision(`it is ${describe(raw)}`, ENVOY_SHAPE);
  if (typeof raw.allowed !== 'boolean') return invalidDecision(`"allowed" is ${describe(raw.allowed)}, not a boolean`, ENVOY_SHAPE);
  let headers: Record<string, string> = {};
  if (raw.headers !== undefined) {
    const h = envoyHeaders(raw.headers);
    if ('error' in h) return invalidDecision(h.error, ENVOY_SHAPE);
    headers = h.headers;
  }
  if (raw.body !== undefined && typeof raw.body !== 'string') return invalidDecision(`"body" is ${describe(raw.body)}, not a string`, ENVOY_SHAPE);
  if (raw.http_status !== undefined) {
    const err = httpStatus(raw.http_status, 'http_status');
    if (err) return invalidDecision(err, ENVOY_SHAPE);
  }
  const body = typeof raw.body === 'string' ? raw.body.trim() : '';
  return {
    allow: raw.allowed,
    reasons: raw.allowed ? [] : [body || 'denied by envoy.authz.allow'],
    headers,
    httpStatus: (raw.http_status as number | undefined) ?? null,
    mask: [],
    cost: null,
  };
}
