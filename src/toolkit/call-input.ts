import { prepareCall } from '../authz/prepare.js';
import { listingInput } from '../authz/list-policy.js';
import type { HttpRequestView } from '../authz/view.js';
import { countValue } from '../budget/tokens.js';
import type { Identity } from '../identity/types.js';
import { parseMcpBody } from '../mcp/jsonrpc.js';
import type { BudgetInputEntry, PolicyInput } from '../contract/policy.js';
import type { CallDescription, EntrypointMode, IdentitySpec, RequestSpec } from './scenario-types.js';

/**
 * The policy input for a described call, built by authz's own "prepare input" step
 * (authz/prepare.ts): an HttpRequestView with the JSON-RPC body, parseMcpBody, then prepareCall. Nothing
 * here writes input fields itself, so a scenario or an explain sees exactly what the mesh would
 * give the policy.
 */

export interface CallSpec extends CallDescription {
  nowNs: bigint;
  /** Which contract the policy is evaluated under: the input differs (authz's inputMode). */
  mode: EntrypointMode;
}

/** A call the mesh would refuse before asking the policy (malformed body, invalid params). */
export class CallRefusedError extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
    this.name = 'CallRefusedError';
  }
}

export const DEV_ISSUER = 'http://127.0.0.1:5556';
const DEFAULT_HOST = '127.0.0.1:10000';
const DEFAULT_SESSION = 'scenario-session';
const PROTOCOL_VERSION = '2025-06-18';

/** A verified identity as the token verifier would return it; null for authenticated: false. */
export function identityFromSpec(s: IdentitySpec, nowNs: bigint): Identity | null {
  if (s.authenticated === false) return null;
  const sub = s.sub ?? 'scenario-user';
  const iss = s.iss ?? DEV_ISSUER;
  const team = s.team ?? null;
  const groups = s.groups ?? [];
  const agent = s.agent ?? null;
  const scopes = s.scopes ?? [];
  const nowSec = Number(nowNs / 1_000_000_000n);
  // The verifier passes every verified claim through; these are the ones a token would carry.
  const claims: Record<string, unknown> = {
    iss, sub, aud: 'tollgate', iat: nowSec, exp: nowSec + 3600,
    ...(team !== null ? { team } : {}), ...(groups.length ? { groups } : {}), ...(agent !== null ? { azp: agent } : {}),
    ...(scopes.length ? { scope: scopes.join(' ') } : {}), ...(s.claims ?? {}),
  };
  return { sub, iss, aud: ['tollgate'], team, groups, roles: [], tenant: null, agent, scopes, delegation: s.delegation ?? [], expiresAt: nowSec + 3600, claims };
}

export function methodOf(r: RequestSpec): string | null {
  if (r.transport) return null;
  return r.method ?? (r.tool ? 'tools/call' : r.resource ? 'resources/read' : r.prompt ? 'prompts/get' : null);
}

function paramsOf(r: RequestSpec, method: string): Record<string, unknown> | undefined {
  if (r.params) return r.params;
  if (method === 'tools/call') return { name: r.tool, arguments: r.arguments ?? {} };
  if (method === 'prompts/get') return { name: r.prompt, ...(r.arguments ? { arguments: r.arguments } : {}) };
  if (r.resource !== undefined) return { uri: r.resource };
  return undefined;
}

/** The JSON-RPC message as the client would send it; null for GET/DELETE. */
export function jsonRpcBody(r: RequestSpec): Record<string, unknown> | null {
  const method = methodOf(r);
  if (method === null) return null;
  const notification = r.id === null || (r.id === undefined && method.startsWith('notifications/'));
  const params = paramsOf(r, method);
  return { jsonrpc: '2.0', ...(notification ? {} : { id: r.id ?? 1 }), method, ...(params !== undefined ? { params } : {}) };
}

function nextUtcMidnight(nowNs: bigint): string {
  const d = new Date(Number(nowNs / 1_000_000n));
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)).toISOString();
}

export function requestView(spec: CallSpec, body: Buffer): HttpRequestView {
  const r = spec.request;
  const rawPath = r.path ?? '/mcp';
  const q = rawPath.indexOf('?');
  const sessionId = r.session_id === undefined ? DEFAULT_SESSION : r.session_id;
  const protocol = r.protocol_version === undefined ? PROTOCOL_VERSION : r.protocol_version;
  const headers: Record<string, string> = {
    ':authority': DEFAULT_HOST, ':method': r.transport ?? 'POST', ':path': rawPath, ':scheme': 'http',
    accept: 'application/json, text/event-stream', 'x-request-id': 'scenario-request',
    ...(body.length ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}),
    ...(sessionId !== null ? { 'mcp-session-id': sessionId } : {}),
    ...(protocol !== null ? { 'mcp-protocol-version': protocol } : {}),
    ...(r.headers ?? {}),
  };
  return {
    id: 'scenario-request', method: r.transport ?? 'POST', path: rawPath, query: q >= 0 ? rawPath.slice(q + 1) : '',
    host: DEFAULT_HOST, scheme: 'http', protocol: 'HTTP/1.1', headers, body, truncated: false,
    context: { server: spec.server, namespace: spec.namespace },
    source: { address: '127.0.0.1', principal: '' }, destination: { address: '127.0.0.1', principal: '' }, traceId: null,
  };
}

/** Builds the input; throws CallRefusedError for a call the mesh refuses before policy. */
export function buildCallInput(spec: CallSpec): PolicyInput {
  if (spec.request.listed !== undefined) {
    // What the mesh asks for each tool in a tools/list answer, from the list request's own input.
    const { listed, ...rest } = spec.request;
    const base = buildCallInput({ ...spec, request: { ...rest, method: 'tools/list' } });
    return listingInput(base, { kind: 'tool', name: listed, raw: { name: listed }, annotations: spec.annotations ?? undefined })!;
  }
  const body = jsonRpcBody(spec.request);
  const raw = body ? Buffer.from(JSON.stringify(body)) : Buffer.alloc(0);
  const view = requestView(spec, raw);
  const parsed = body ? parseMcpBody(raw) : null;
  if (parsed && !parsed.ok) throw new CallRefusedError(`the mesh refuses this request before the policy sees it: ${parsed.error.message}`, parsed.error.code);

  const budgets: BudgetInputEntry[] = (spec.budget?.budgets ?? []).map((b) => ({ ...b, resets_at: b.resets_at ?? nextUtcMidnight(spec.nowNs) }));
  // The same "prepare input" step as authz's Check; the scenario stands in for the budget gate.
  const [call] = prepareCall({
    req: view, identity: identityFromSpec(spec.identity, spec.nowNs), scope: { server: spec.server, namespace: spec.namespace },
    parsed, nowMs: Number(spec.nowNs) / 1_000_000, mode: spec.mode,
  }, {
    // As in authz: arguments are counted only when budgets apply to the call.
    weigh: (_subject, args) => ({
      tokens: spec.budget?.estimatedTokens ?? (budgets.length && args ? countValue(args) : 0), measured: null, budget: { entries: budgets, exhausted: null },
    }),
    annotations: () => spec.annotations, pins: null,
  });
  if (call!.facts?.invalid) throw new CallRefusedError(`the mesh refuses this request before the policy sees it (-32602 invalid params): ${call!.facts.invalid}`, -32602);
  return call!.input!;
}
