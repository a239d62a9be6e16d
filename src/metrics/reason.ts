import { ErrorCode } from '../authz/codes.js';

/**
 * Why a call ended the way it did, in a handful of buckets an operator can alert on. Allows are
 * always "policy": the policy is what let them through.
 */
export type ReasonClass = 'policy' | 'budget' | 'auth' | 'bad_request' | 'unavailable';

export const REASON_CLASSES: readonly ReasonClass[] = ['policy', 'budget', 'auth', 'bad_request', 'unavailable'];

/**
 * The class of a decision from the stable error code it was answered with (null for an allow).
 * A switch on small integers: safe to call on every Check.
 */
export function reasonClassOf(code: number | null): ReasonClass {
  // BatchAborted: a batch element refused because a sibling was denied; the policy decided that too.
  switch (code) {
    case null:
    case ErrorCode.PolicyDenied:
    case ErrorCode.BatchAborted:
      return 'policy';
    case ErrorCode.BudgetExhausted:
      return 'budget';
    case ErrorCode.Unauthenticated:
    case ErrorCode.SessionNotOwned:
      return 'auth';
    case ErrorCode.ParseError:
    case ErrorCode.InvalidRequest:
    case ErrorCode.InvalidParams:
    case ErrorCode.RequestTooLarge:
      return 'bad_request';
    case ErrorCode.Unavailable:
      return 'unavailable';
    default:
      // A code this table does not know yet: count it where nobody mistakes it for a policy verdict.
      return 'unavailable';
  }
}
