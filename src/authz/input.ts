import type { Identity } from '../identity/types.js';
import type { JsonRpcMessage } from '../mcp/jsonrpc.js';
import { callFacts, type McpCallFacts } from '../mcp/request.js';
import type { Finding } from '../pins/scan.js';
import { POLICY_INPUT_VERSION, type BudgetInputEntry, type PluginInputVersion, type IdentityInput, type McpInput, type McpSessionInput, type PolicyInput, type ServerProvenance, type ToolAnnotations } from '../contract/policy.js';
import type { HttpRequestView } from './view.js';
import { attributesInput } from './attributes.js';
import { CREDENTIAL_HEADERS } from '../util/credentials.js';
import type { PinInput } from '../pins/store.js';

/**
 * The one place the policy input is built (see docs/policy-input.md). Everything a policy can see
 * comes from here; anything added must be documented there too.
 */

export interface RequestScope {
  server: string;
  namespace: string;
  provenance?: ServerProvenance | null;
}

/**
 * Per-HTTP-request parts, shared by every message of a batch: the policy input without `mcp` and
 * `budget`, which are per message (fields as the contract declares them).
 */
export interface SharedInput extends Omit<PolicyInput, 'mcp' | 'budget'> {
  /** input.mcp.session, set by Check once it knows where the session stands. */
  session?: McpSessionInput | null;
}

const ANONYMOUS: IdentityInput = Object.freeze({
  authenticated: false, sub: null, iss: null, team: null, groups: [], roles: [], tenant: null, agent: null, scopes: [], delegation: [], claims: {},
}) as IdentityInput;

export function identityInput(id: Identity | null): IdentityInput {
  if (!id) return ANONYMOUS;
  return {
    authenticated: true, sub: id.sub, iss: id.iss, team: id.team, groups: id.groups, roles: id.roles, tenant: id.tenant, agent: id.agent,
    scopes: id.scopes, delegation: id.delegation, claims: id.claims,
  };
}

/**
 * `input.parsed_path` as opa-envoy-plugin builds it: the percent-decoded path, leading slashes
 * trimmed, split on "/" with empty segments kept ("/" → [""], "/a//b/" → ["a", "", "b", ""]).
 * A path that does not decode is split as sent.
 */
export function parsePath(path: string): string[] {
  let decoded = path;
  try { decoded = decodeURIComponent(path); } catch { /* malformed escapes: keep the raw path */ }
  let i = 0;
  while (i < decoded.length && decoded[i] === '/') i++;
  return decoded.slice(i).split('/');
}

/** opa-envoy-plugin's `input.version` (the ext_authz API its attributes come from). */
export const PLUGIN_INPUT_VERSION: Readonly<PluginInputVersion> = Object.freeze({ ext_authz: 'v3', encoding: 'protojson' });

export function parseQuery(query: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (!query) return out;
  for (const [k, v] of new URLSearchParams(query)) (out[k] ??= []).push(v);
  return out;
}

/** A tollgate-mode policy never needs credential headers: the identity they carry is already verified. */
function withoutCredentials(h: Record<string, string>): Record<string, string> {
  if (!CREDENTIAL_HEADERS.some((k) => k in h)) return h;
  const out: Record<string, string> = {};
  for (const k in h) if (!CREDENTIAL_HEADERS.includes(k)) out[k] = h[k]!;
  return out;
}

/**
 * `mode` "envoy" gives opa-envoy-plugin policies exactly what that plugin gives them (raw
 * headers including the bearer token, which such policies verify in Rego, and the body as a
 * string). "tollgate" leaves out credentials and the body string: identity arrives verified in
 * input.identity and the body parsed in input.parsed_body, and every byte less is a byte the
 * WASM does not have to parse on each call.
 */
export function sharedInput(req: HttpRequestView, identity: Identity | null, parsedBody: unknown, nowNs: number, mode: 'tollgate' | 'envoy' = 'tollgate'): SharedInput {
  const pathOnly = req.path.split('?')[0] ?? req.path;
  const compat = mode === 'envoy';
  const headers = compat ? req.headers : withoutCredentials(req.headers);
  return {
    version: compat ? PLUGIN_INPUT_VERSION : POLICY_INPUT_VERSION,
    request: {
      id: req.id, method: req.method, path: pathOnly, host: req.host, scheme: req.scheme, headers, time_ns: nowNs,
    },
    identity: identityInput(identity),
    attributes: attributesInput(req, headers, compat),
    parsed_body: parsedBody,
    parsed_path: parsePath(pathOnly),
    parsed_query: parseQuery(req.query),
    truncated_body: req.truncated,
    // As a fresh authz sees it: nobody known to own it yet. Check replaces this with what it knows.
    session: req.headers['mcp-session-id'] ? { id: req.headers['mcp-session-id'], owner: null, bound_by: null } : null,
  };
}

/**
 * The shared input as one element of a JSON-RPC batch sees it: `parsed_body` (and, for
 * opa-envoy-plugin policies, the body string) is that element, not the whole array. Every element
 * is evaluated, logged and masked on its own; carrying the whole batch in each would make a batch
 * of n cost n times its size (a 1 MB batch of 64 built 64 MB of policy input).
 */
export function batchElementInput(shared: SharedInput, element: unknown, mode: 'tollgate' | 'envoy' = 'tollgate'): SharedInput {
  const attrs = shared.attributes as { request?: { http?: Record<string, unknown> } };
  const http = attrs.request?.http ?? {};
  let own: Record<string, unknown> = http;
  if (mode === 'envoy') {
    // The element as Envoy would have carried it on its own: bytes (base64) if it sent the batch
    // packed as bytes, else a string; size in the plugin's shape (a number).
    const text = JSON.stringify(element);
    const packed = http.rawBody !== undefined;
    own = { ...http, size: Buffer.byteLength(text), ...(packed ? { rawBody: Buffer.from(text).toString('base64') } : { body: text }) };
  }
  return {
    ...shared,
    attributes: { ...shared.attributes, request: { ...attrs.request, http: own } },
    parsed_body: element,
  };
}

export interface MessageContext {
  message: JsonRpcMessage | null;
  facts: McpCallFacts | null;
  batch: { index: number; size: number } | null;
  annotations: ToolAnnotations | null;
  /** Pin status of the called tool; undefined when pinning is off (then input.mcp has no `pin`). */
  pin?: PinInput | null;
  budgets: BudgetInputEntry[];
  estimatedTokens: number;
}

/** The fields of input.mcp that describe the message itself (the rest describe where it goes). */
type MessageFields = Pick<McpInput, 'method' | 'kind' | 'tool' | 'arguments' | 'resource' | 'prompt' | 'params' | 'id'>;

function messageFields(msg: JsonRpcMessage | null, facts: McpCallFacts | null): MessageFields {
  return {
    method: msg?.method ?? null,
    kind: msg ? msg.kind : 'transport',
    tool: facts?.tool ?? null,
    arguments: facts?.arguments ?? null,
    resource: facts?.resource ?? null,
    prompt: facts?.prompt ?? null,
    params: msg?.params ?? null,
    id: msg?.id ?? null,
  };
}

export function policyInput(shared: SharedInput, scope: RequestScope, req: HttpRequestView, m: MessageContext): PolicyInput {
  return {
    version: shared.version,
    mcp: {
      ...messageFields(m.message, m.facts),
      session_id: req.headers['mcp-session-id'] ?? null,
      session: shared.session ?? null,
      protocol_version: req.headers['mcp-protocol-version'] ?? null,
      server: scope.server,
      namespace: scope.namespace,
      provenance: scope.provenance ?? null,
      annotations: m.annotations,
      batch: m.batch,
      ...(m.pin !== undefined ? { pin: m.pin } : {}),
    },
    identity: shared.identity,
    budget: { budgets: m.budgets, estimated_tokens: m.estimatedTokens },
    request: shared.request,
    attributes: shared.attributes,
    parsed_body: shared.parsed_body,
    parsed_path: shared.parsed_path,
    parsed_query: shared.parsed_query,
    truncated_body: shared.truncated_body,
  };
}

/** What a listing question adds to input.mcp beyond the call the item stands for. */
export interface ListingContext {
  annotations: ToolAnnotations | null;
  /** As in MessageContext: undefined when pinning is off. */
  pin?: PinInput | null;
  /** Scanner findings on a listed prompt's or resource's description; undefined when pinning is off. */
  findings?: Finding[];
}

/**
 * The input of a listing question: would the policy allow `call` (the request a listed item stands
 * for, e.g. tools/call of a listed tool) to this caller? It is the list request's own input (`base`:
 * identity, server, session, budgets and the request fields as Check saw them) with input.mcp
 * describing `call`, built by the same fields policyInput uses, and `listing: true`. `request`,
 * `attributes` and `parsed_body` still describe the list request, which is what went over the wire.
 */
export function listingCallInput(base: PolicyInput, call: JsonRpcMessage, l: ListingContext): PolicyInput {
  return {
    ...base,
    mcp: {
      ...base.mcp,
      ...messageFields(call, callFacts(call)),
      annotations: l.annotations,
      listing: true,
      ...(l.pin !== undefined ? { pin: l.pin } : {}),
      ...(l.findings !== undefined ? { findings: l.findings } : {}),
    },
  };
}
