import type { Identity } from '../identity/types.js';
import type { JsonRpcMessage, ParsedBody } from '../mcp/jsonrpc.js';
import { callFacts, type McpCallFacts } from '../mcp/request.js';
import type { BudgetCheck, ChargeSubject, PriorClaim, TokenCount } from '../budget/types.js';
import type { McpSessionInput, PolicyInput, ToolAnnotations } from '../contract/policy.js';
import type { PinInput } from '../pins/store.js';
import { batchElementInput, policyInput, sharedInput, type RequestScope } from './input.js';
import type { HttpRequestView } from './view.js';

/**
 * The "prepare input" step of a Check (parse → authenticate → prepare input → judge → finish):
 * from a parsed request and its verified caller, each message's policy input and what its
 * arguments weigh against the caller's budgets. No I/O and no clock: the caller passes the time
 * and the lookups. Authz and the policy toolkit (scenarios, explain) both call this, so a policy
 * sees the same input in both.
 */

export interface PrepareRequest {
  req: HttpRequestView;
  identity: Identity | null;
  scope: RequestScope;
  /** The parsed POST body; null for GET and DELETE (one transport-level "message"). */
  parsed: Extract<ParsedBody, { ok: true }> | null;
  /** Wall clock (epoch ms); the input carries it as epoch nanoseconds. */
  nowMs: number;
  mode?: 'tollgate' | 'envoy' | undefined;
  /** input.mcp.session as Check knows it; absent: as a fresh authz sees it (sharedInput). */
  session?: McpSessionInput | null;
}

/** What a message's arguments weigh: tokens in the default encoding, in each budget's, the budgets' standing. */
export interface Weight {
  tokens: number;
  measured: TokenCount | null;
  budget: BudgetCheck;
}

export interface PrepareLookups {
  /** Counts a message's arguments and checks the caller's budgets, given what earlier batch elements claim. */
  weigh(subject: ChargeSubject, args: unknown, prior: readonly PriorClaim[]): Weight;
  /** Tool annotations the server declared (asked for tool calls only). */
  annotations: ((server: string, tool: string) => ToolAnnotations | null) | null;
  /** Pin status of a tool; null: pinning is off (input.mcp has no `pin`). */
  pins: ((server: string, tool: string) => PinInput) | null;
}

/** One message, prepared: `input` is null when the mesh refuses it before policy (invalid params). */
export interface Prepared extends Weight {
  message: JsonRpcMessage | null;
  facts: McpCallFacts | null;
  subject: ChargeSubject;
  input: PolicyInput | null;
}

const UNWEIGHED: Weight = { tokens: 0, measured: null, budget: { entries: [], exhausted: null } };

/** Prepares every message of the request, in order (a batch's elements each get their own input). */
export function prepareCall(r: PrepareRequest, look: PrepareLookups): Prepared[] {
  const { req, identity, scope, parsed, mode } = r;
  const shared = sharedInput(req, identity, parsed ? parsed.value : null, r.nowMs * 1_000_000, mode);
  if (r.session !== undefined) shared.session = r.session;
  const messages: Array<JsonRpcMessage | null> = parsed ? parsed.messages : [null];
  const size = parsed?.batch ? messages.length : null;
  const elements = size !== null ? parsed!.value as unknown[] : null;
  const out: Prepared[] = [];
  for (let index = 0; index < messages.length; index++) {
    const message = messages[index]!;
    const facts = message ? callFacts(message) : null;
    const subject: ChargeSubject = { team: identity?.team ?? null, agent: identity?.agent ?? null, sub: identity?.sub ?? null, server: scope.server, tool: facts?.tool ?? null };
    if (facts?.invalid) {
      out.push({ message, facts, subject, input: null, ...UNWEIGHED });
      continue;
    }
    // Earlier elements of the same batch: spent already, as far as this one's budgets are concerned.
    const prior = out.filter((e) => e.tokens > 0).map((e) => ({ subject: e.subject, tokens: e.measured ?? e.tokens }));
    const weight = look.weigh(subject, facts?.arguments, prior);
    const own = elements ? batchElementInput(shared, elements[index], mode) : shared;
    const annotations = facts?.tool && look.annotations ? look.annotations(scope.server, facts.tool) : null;
    // A call is judged on what the server offers now (its last tools/list), not on what the client cached.
    const pin = look.pins && message?.method === 'tools/call' ? (facts?.tool ? look.pins(scope.server, facts.tool) : null) : undefined;
    const input = policyInput(own, scope, req, {
      message, facts, batch: size === null ? null : { index, size }, annotations, pin, budgets: weight.budget.entries, estimatedTokens: weight.tokens,
    });
    out.push({ message, facts, subject, input, ...weight });
  }
  return out;
}
