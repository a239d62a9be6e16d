import type { Identity } from '../identity/types.js';
import type { Decision, PolicyInput } from '../contract/policy.js';
import { DECISION_RECORD_SCHEMA, type DecisionRecordDraft } from '../decisionlog/types.js';
import { createInputMasker, type InputMasker } from '../decisionlog/mask.js';
import { FOLD_MIN_BODY_BYTES, foldInput } from '../decisionlog/fold.js';
import type { RequestScope } from './input.js';
import type { JsonRpcMessage } from '../mcp/jsonrpc.js';
import type { McpCallFacts } from '../mcp/request.js';

/**
 * Redacts an input for the log; must not mutate it (the request path still holds it). The one
 * masker type: decisionlog's (issue #13 found two of the same shape).
 */
export type Masker = InputMasker;

/**
 * At least never log credentials, nor what the decision and policy ask to mask: the production
 * masker without secret detection, so its credential headers are the same list (the copy here
 * forgot proxy-authorization).
 */
export const eraseCredentials: Masker = createInputMasker({ detectSecrets: false });

/**
 * What happened to the call, beyond the policy's verdict: `forwarded` to the MCP server,
 * `refused` (the client got the error), or `not_executed` although the policy allowed it (its batch
 * was refused as a whole, or the answer came after Envoy's ext_authz deadline).
 */
export interface RecordOutcome {
  outcome: 'forwarded' | 'refused' | 'not_executed';
  /** The policy's own verdict; null when the call never reached policy. */
  policyAllow: boolean | null;
  /** How late the answer was, in ms past Envoy's deadline; null when it was in time. */
  lateMs: number | null;
}

export interface RecordParts {
  decisionId: string;
  now: Date;
  traceId: string | null;
  instance: string;
  version: string;
  revision: string | null;
  path: string;
  identity: Identity | null;
  scope: RequestScope;
  message: JsonRpcMessage | null;
  facts: McpCallFacts | null;
  sessionId: string | null;
  batchSize: number | null;
  input: PolicyInput | null;
  decision: { allow: boolean; reasons: string[]; httpStatus: number; code: number | null; error: string | null } & RecordOutcome;
  policyDecision: Decision | null;
  policyMask: unknown;
  budget: DecisionRecordDraft['budget'];
  requestTokens: number | null;
  /** The policy's `cost` charged for an allowed call; null when none. */
  policyCost?: number | null;
  evalNs: number;
  totalNs: number;
  /** Id (jti) of the per-caller upstream credential sent with the call; never its value. */
  upstreamCredential?: string | null;
}

export function buildRecord(p: RecordParts, mask: Masker): DecisionRecordDraft {
  const masked = p.input ? mask(p.input, p.policyDecision?.mask ?? [], p.policyMask) : null;
  // Above FOLD_MIN_BODY_BYTES one copy of the arguments and headers is written and hashed; the others are listed in `folded`.
  const folded = masked ? foldInput(masked.input, FOLD_MIN_BODY_BYTES) : null;
  return {
    schema: DECISION_RECORD_SCHEMA,
    decision_id: p.decisionId,
    timestamp: p.now.toISOString(),
    trace_id: p.traceId,
    labels: { id: p.instance, app: 'tollgate', version: p.version, instance: p.instance },
    path: p.path,
    bundles: p.revision ? { tollgate: { revision: p.revision } } : {},
    identity: {
      sub: p.identity?.sub ?? null, iss: p.identity?.iss ?? null, team: p.identity?.team ?? null,
      agent: p.identity?.agent ?? null, delegation: p.identity?.delegation ?? [],
    },
    mcp: {
      server: p.scope.server, namespace: p.scope.namespace, method: p.message?.method ?? null, tool: p.facts?.tool ?? null,
      id: p.message?.id ?? null, session_id: p.sessionId, batch_size: p.batchSize,
    },
    input: folded?.input ?? null,
    result: {
      allow: p.decision.allow, reasons: p.decision.reasons, http_status: p.decision.httpStatus,
      code: p.decision.code, error: p.decision.error,
      outcome: p.decision.outcome, policy_allow: p.decision.policyAllow, late_ms: p.decision.lateMs,
    },
    budget: p.budget,
    tokens: p.requestTokens === null ? null : { request: p.requestTokens, response: null, ...(p.policyCost ? { policy_cost: p.policyCost } : {}) },
    metrics: { timer_eval_ns: p.evalNs, timer_total_ns: p.totalNs },
    erased: masked?.erased ?? [],
    masked: masked?.masked ?? [],
    ...(folded && folded.folded.length > 0 ? { folded: folded.folded } : {}),
    ...(p.upstreamCredential ? { upstream_credential: p.upstreamCredential } : {}),
  };
}
