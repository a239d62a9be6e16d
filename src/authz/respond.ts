import type { JsonRpcId } from '../mcp/jsonrpc.js';
import type { Refusal } from '../contract/refusal.js';

/** What authz tells Envoy, before it is put into a CheckResponse. */
export type AuthzOutcome =
  | { allow: true; headers: Record<string, string>; removeHeaders: string[] }
  | { allow: false; status: number; headers: Record<string, string>; body: string };

export interface ErrorData {
  decision_id: string;
  reasons?: string[];
  [k: string]: unknown;
}

export interface RpcError {
  id: JsonRpcId | null;
  code: number;
  message: string;
  data: ErrorData;
}

function rpcErrorObject(e: RpcError): Record<string, unknown> {
  return { jsonrpc: '2.0', id: e.id, error: { code: e.code, message: e.message, data: e.data } };
}

/** A JSON-RPC error response (or an array of them for a batch) as an ext_authz denial. */
export function denyWithRpcErrors(status: number, errors: RpcError[], batch: boolean, decisionId: string, extraHeaders: Record<string, string> = {}): AuthzOutcome {
  const payload = batch ? errors.map(rpcErrorObject) : rpcErrorObject(errors[0]!);
  return {
    allow: false,
    status,
    headers: { 'content-type': 'application/json', 'x-tollgate-decision-id': decisionId, 'x-tollgate-decision': 'deny', ...extraHeaders },
    body: JSON.stringify(payload),
  };
}

/** The message a client shows: the policy's reasons, then where to look it up. */
export function deniedMessage(reasons: string[], decisionId: string): string {
  const why = reasons.length ? reasons.join('; ') : 'denied by policy';
  return `Tollgate denied this call: ${why} (decision ${decisionId})`;
}

/** RFC 6750 / RFC 9728 challenge: where the client finds how to get a token for this resource. */
export function bearerChallenge(resourceMetadataUrl: string, error: string, description: string): string {
  const q = (s: string): string => s.replace(/["\\]/g, "'");
  return `Bearer resource_metadata="${q(resourceMetadataUrl)}", error="${q(error)}", error_description="${q(description)}"`;
}

/** An `unauthenticated` refusal, with the challenge that tells the client where to get a token. */
export function unauthenticated(decisionId: string, id: JsonRpcId | null, r: Refusal, failure: string, resourceMetadataUrl: string): AuthzOutcome {
  const error = failure === 'missing_token' ? 'invalid_request' : 'invalid_token';
  const description = r.message;
  return denyWithRpcErrors(r.httpStatus, [{
    id, code: r.code,
    message: `Tollgate: authentication required: ${description} (decision ${decisionId})`,
    data: { decision_id: decisionId, reasons: [description], auth_failure: failure },
  }], false, decisionId, { 'www-authenticate': bearerChallenge(resourceMetadataUrl, error, description) });
}

/** A refusal that is not a policy decision: bad body, too large, policy unavailable, foreign session. */
export function refuse(decisionId: string, r: Refusal, id: JsonRpcId | null): AuthzOutcome {
  return denyWithRpcErrors(r.httpStatus, [{ id, code: r.code, message: `Tollgate: ${r.message} (decision ${decisionId})`, data: { decision_id: decisionId, reasons: [r.message] } }], false, decisionId);
}
