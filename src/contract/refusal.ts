/**
 * The refusal taxonomy: every way Tollgate refuses a call, each with the JSON-RPC error code the
 * client sees, the HTTP status it is answered with, and the reason class metrics and traces count
 * it under. One table, so the three can never drift apart (issue 13). Contract: clients and
 * runbooks match on the codes (docs/policy-input.md, "Error codes").
 */

/**
 * Stable JSON-RPC error codes (the -32000..-32099 range is reserved by JSON-RPC for
 * implementation-defined server errors).
 */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  InvalidParams: -32602,
  Unauthenticated: -32001,
  PolicyDenied: -32003,
  BudgetExhausted: -32004,
  RequestTooLarge: -32005,
  Unavailable: -32006,
  BatchAborted: -32007,
  /** The request's Mcp-Session-Id was initialized by another identity. */
  SessionNotOwned: -32008,
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * Why a call ended the way it did, in a handful of buckets an operator can alert on. Allows are
 * always "policy": the policy is what let them through.
 */
export type ReasonClass = 'policy' | 'budget' | 'auth' | 'bad_request' | 'unavailable';

export const REASON_CLASSES: readonly ReasonClass[] = ['policy', 'budget', 'auth', 'bad_request', 'unavailable'];

/**
 * Each kind of refusal. `status` null: answered with the configured deny status (200 with the
 * JSON-RPC error by default, or the policy's `http_status`), given when the refusal is made.
 */
const KINDS = {
  parseError: { code: ErrorCode.ParseError, status: 400, reasonClass: 'bad_request' },
  invalidRequest: { code: ErrorCode.InvalidRequest, status: 400, reasonClass: 'bad_request' },
  methodNotAllowed: { code: ErrorCode.InvalidRequest, status: 405, reasonClass: 'bad_request' },
  invalidParams: { code: ErrorCode.InvalidParams, status: null, reasonClass: 'bad_request' },
  tooLarge: { code: ErrorCode.RequestTooLarge, status: 413, reasonClass: 'bad_request' },
  unauthenticated: { code: ErrorCode.Unauthenticated, status: 401, reasonClass: 'auth' },
  sessionNotOwned: { code: ErrorCode.SessionNotOwned, status: 404, reasonClass: 'auth' },
  policyDenied: { code: ErrorCode.PolicyDenied, status: null, reasonClass: 'policy' },
  batchAborted: { code: ErrorCode.BatchAborted, status: null, reasonClass: 'policy' },
  budgetExhausted: { code: ErrorCode.BudgetExhausted, status: null, reasonClass: 'budget' },
  unavailable: { code: ErrorCode.Unavailable, status: 503, reasonClass: 'unavailable' },
  /** Authz answered after Envoy's deadline: Envoy had already answered the client itself. */
  late: { code: ErrorCode.Unavailable, status: 504, reasonClass: 'unavailable' },
  /** ext_proc: no Check of this instance allowed the request (other replica, expired). */
  unknownDecision: { code: ErrorCode.Unavailable, status: 503, reasonClass: 'unavailable' },
  /** ext_proc: an answer that may carry a list could not be read to filter it. */
  unfilterable: { code: ErrorCode.Unavailable, status: 502, reasonClass: 'unavailable' },
} as const satisfies Record<string, { code: ErrorCodeValue; status: number | null; reasonClass: ReasonClass }>;

export type RefusalKind = keyof typeof KINDS;

/** One refusal: what the client is told (code, status, message) and how it is counted. */
export interface Refusal {
  kind: RefusalKind;
  code: ErrorCodeValue;
  httpStatus: number;
  reasonClass: ReasonClass;
  message: string;
}

type FixedKind = { [K in RefusalKind]: (typeof KINDS)[K]['status'] extends number ? K : never }[RefusalKind];
type DenyKind = Exclude<RefusalKind, FixedKind>;

/** A refusal of a kind with a fixed HTTP status. */
export function refusal(kind: FixedKind, message: string): Refusal;
/** A refusal answered with the deny status in force (configured, or the policy's http_status). */
export function refusal(kind: DenyKind, message: string, denyStatus: number): Refusal;
export function refusal(kind: RefusalKind, message: string, denyStatus?: number): Refusal {
  const k = KINDS[kind];
  return { kind, code: k.code, httpStatus: k.status ?? denyStatus!, reasonClass: k.reasonClass, message };
}

const CLASS_OF_CODE: ReadonlyMap<number, ReasonClass> = new Map(
  Object.values(KINDS).map((k) => [k.code, k.reasonClass] as [number, ReasonClass]),
);

/**
 * The class of a decision from the error code it was answered with (null for an allow). A map
 * lookup: safe on every Check. A code this table does not know is counted as "unavailable", where
 * nobody mistakes it for a policy verdict.
 */
export function reasonClassOf(code: number | null): ReasonClass {
  if (code === null) return 'policy';
  return CLASS_OF_CODE.get(code) ?? 'unavailable';
}
