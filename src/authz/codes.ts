/**
 * Stable JSON-RPC error codes Tollgate answers with (the -32000..-32099 range is reserved by
 * JSON-RPC for implementation-defined server errors). Clients and runbooks may match on them.
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
