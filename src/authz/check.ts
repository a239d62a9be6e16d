import { randomUUID } from 'node:crypto';
import { AuthError, type Identity, type TokenVerifier } from '../identity/types.js';
import type { UpstreamCredential } from '../identity/upstream-credentials.js';
import { bearerToken } from '../identity/bearer.js';
import { parseMcpBody, idOf, type BodyLimits, type JsonRpcId, type JsonRpcMessage } from '../mcp/jsonrpc.js';
import { callFacts, type McpCallFacts } from '../mcp/request.js';
import type { BudgetGate, ChargeSubject, TokenCount } from '../budget/types.js';
import { addCounts } from '../budget/tokens.js';
import type { Decision, PolicyInput, ToolAnnotations, BudgetInputEntry } from '../contract/policy.js';
import type { PolicyHolder } from '../policy/holder.js';
import type { DecisionSink } from '../decisionlog/types.js';
import { ErrorCode, reasonClassOf, refusal, type ErrorCodeValue, type Refusal } from '../contract/refusal.js';
import { batchElementInput, policyInput, sharedInput, type RequestScope, type SharedInput } from './input.js';
import { DECISION_ID_HEADER, type PendingCalls } from './pending.js';
import { buildRecord, eraseCredentials, type Masker, type RecordParts } from './record.js';
import { deniedMessage, denyWithRpcErrors, refuse, unauthenticated, type AuthzOutcome, type RpcError } from './respond.js';
import type { HttpRequestView } from './view.js';
import type { AuthzMetrics } from '../metrics/authz-metrics.js';
import type { CheckSpanFacts, CheckTracer } from '../telemetry/check-span.js';
import { MAX_SESSION_ID_LENGTH, ownerOf, type SessionOwners, type SessionStanding } from './sessions.js';
import type { McpSessionInput } from '../contract/policy.js';
import type { RecordOutcome } from './record.js';
import type { PinInput } from '../pins/store.js';

export interface AuthzSettings {
  instanceId: string;
  version: string;
  /** Used when the sidecar's route does not name the server (context_extensions). */
  defaultScope: RequestScope;
  /** RFC 9728 metadata URL for the 401 challenge, when the route does not give one. */
  resourceMetadataUrl: string;
  limits: BodyLimits;
  /**
   * HTTP status for a policy denial of a JSON-RPC request. 200 by default: the body is a JSON-RPC
   * error response, which MCP clients surface as an error of that call (with code and reasons);
   * a 4xx would make SDK clients raise a transport error instead. Notifications and transport
   * requests, which have no id to answer, are denied with 403.
   */
  denyStatus: number;
  /** Authorization header value sent upstream in place of the caller's token (no passthrough). */
  upstreamAuthorization: string | null;
  /** Policy contract: shapes the input (docs/policy-input.md). Default "tollgate". */
  inputMode?: 'tollgate' | 'envoy';
}

export interface CheckDeps {
  settings: AuthzSettings;
  verifier: TokenVerifier;
  policy: PolicyHolder;
  budget: BudgetGate | null;
  sink: DecisionSink | null;
  pending: PendingCalls | null;
  /** Tool annotations the server declared in tools/list (never the client's word). */
  annotations: ((server: string, tool: string) => ToolAnnotations | null) | null;
  /** Pin status of a tool (docs/tool-pinning.md); absent: pinning is off. */
  pins?: ((server: string, tool: string) => PinInput) | null;
  /** Tokens a call's arguments count for (what flows into the model through MCP). */
  countTokens: ((value: unknown) => number) | null;
  mask: Masker;
  /** Raw `system/log/mask` result for an input, when the policy defines one. */
  policyMask: ((input: PolicyInput) => unknown) | null;
  clock: () => number;
  /** Prometheus instruments (src/metrics/authz-metrics.ts); absent: nothing is counted. */
  metrics?: AuthzMetrics | null;
  /** Check spans (src/telemetry); absent or disabled: no tracing work at all. */
  tracer?: CheckTracer | null;
  /** Who owns each Mcp-Session-Id (src/authz/sessions.ts); absent: sessions are not bound. */
  sessions?: SessionOwners | null;
  /** Per-caller upstream credentials (docs/identity.md); absent: upstreamAuthorization or none. */
  upstreamCredentials?: { credentialFor(identity: Identity): Promise<UpstreamCredential> } | null;
}

/** The methods of the MCP Streamable HTTP transport, exactly as written: HTTP methods are case-sensitive. */
const TRANSPORT_METHODS = new Set(['POST', 'GET', 'DELETE']);

/**
 * An answer that leaves authz closer than this to Envoy's deadline may arrive after Envoy gave up;
 * it is treated as late (refused, recorded as not executed) so the record never claims a call ran
 * that Envoy had already refused.
 */
export const DEADLINE_MARGIN_MS = 2;

interface Judged {
  message: JsonRpcMessage | null;
  facts: McpCallFacts | null;
  input: PolicyInput | null;
  decision: Decision | null;
  allow: boolean;
  reasons: string[];
  code: ErrorCodeValue | null;
  error: string | null;
  budgets: BudgetInputEntry[];
  /** Names of `warn` budgets this call found used up (it went ahead; the record says so). */
  warned: string[];
  subject: ChargeSubject | null;
  tokens: number;
  measured?: TokenCount | null;
  evalNs: number;
}

/**
 * What an allowed element charges its caller's budgets: its arguments' tokens (in each budget's
 * encoding), plus the `cost` the policy put on the decision, in every encoding alike.
 */
function chargeFor(j: Judged): TokenCount {
  const args: TokenCount = j.measured ?? { tokens: j.tokens };
  const cost = j.allow ? j.decision?.cost ?? 0 : 0;
  return cost > 0 ? addCounts(args, { tokens: cost }) : args;
}

const LIST_METHODS = new Set(['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list']);

const nowNs = (): number => Number(process.hrtime.bigint());

function scopeOf(req: HttpRequestView, d: RequestScope): RequestScope {
  const server = req.context.server || d.server;
  // Provenance is configured for this authz's own server; a route naming another server gets none.
  return { server, namespace: req.context.namespace || d.namespace, provenance: server === d.server ? d.provenance ?? null : null };
}

/**
 * Decides one HTTP request Envoy holds. Every path ends in an explicit answer and a decision
 * record; any unexpected failure denies (fail closed).
 */
export class Authorizer {
  constructor(private readonly deps: CheckDeps) {}

  async check(req: HttpRequestView): Promise<AuthzOutcome> {
    const t0 = nowNs();
    const decisionId = randomUUID();
    try {
      return await this.decide(req, decisionId, t0);
    } catch (e) {
      // Includes a decision record that could not be written: a call we cannot record is refused.
      const r = refusal('unavailable', `authorization failed internally: ${(e as Error).message}`);
      try {
        this.recordSimple(req, decisionId, t0, null, r);
      } catch {
        // The log is what failed; the refusal itself must still go out, and still be counted, but
        // it must not send a reviewer looking for a decision id that no log holds.
        this.observe(req, { decisionId, allow: false, code: r.code, error: r.message, server: scopeOf(req, this.deps.settings.defaultScope).server, team: null, message: null, facts: null }, nowNs() - t0, 0);
        return refuse(decisionId, { ...r, message: `${r.message}; this refusal could not be recorded (decision log unavailable)` }, null);
      }
      return refuse(decisionId, r, null);
    }
  }

  private async decide(req: HttpRequestView, decisionId: string, t0: number): Promise<AuthzOutcome> {
    const { settings } = this.deps;
    const scope = scopeOf(req, settings.defaultScope);
    const metadataUrl = req.context.resource_metadata || settings.resourceMetadataUrl;
    /** Records a refusal made before any message was judged, and answers it. */
    const early = (r: Refusal, identity: Identity | null, id: JsonRpcId | null, recorded?: string): AuthzOutcome => {
      this.recordSimple(req, decisionId, t0, identity, r, scope, recorded);
      return refuse(decisionId, r, id);
    };

    // Exactly POST, GET or DELETE: Envoy routes and forwards the method as sent, so authz must not
    // judge an upper-cased copy of a method the server will see differently (HTTP/2 `get`).
    if (!TRANSPORT_METHODS.has(req.method)) {
      return early(refusal('methodNotAllowed', req.method && TRANSPORT_METHODS.has(req.method.toUpperCase())
        ? `HTTP method "${req.method}" is not "${req.method.toUpperCase()}": HTTP methods are case-sensitive, and MCP Streamable HTTP uses POST, GET and DELETE`
        : `HTTP ${req.method} is not part of the MCP Streamable HTTP transport (use POST, GET or DELETE)`), null, null);
    }
    if (req.truncated) return early(refusal('tooLarge', `request body exceeds the ${settings.limits.maxBytes}-byte limit`), null, null);
    if (req.method !== 'POST' && req.body.length > 0) {
      // Only a POST body is judged: a body on GET or DELETE would reach the server unjudged.
      return early(refusal('invalidRequest', `HTTP ${req.method} to the MCP endpoint must not carry a body (only POST bodies are JSON-RPC messages)`), null, null);
    }

    // Parse before authenticating only to find the id for the error; nothing is trusted yet.
    const parsed = req.method === 'POST' ? parseMcpBody(req.body, settings.limits) : null;
    if (parsed && !parsed.ok) return early(parsed.error, null, null);
    const firstId = parsed?.ok ? idOf(parsed.value) : null;

    let identity: Identity;
    try {
      identity = await this.deps.verifier.verify(bearerToken(req.headers.authorization));
    } catch (e) {
      const failure = e instanceof AuthError ? e.failure : 'issuer_unavailable';
      this.deps.metrics?.recordAuthFailure(failure);
      const description = e instanceof AuthError ? e.message : `token could not be verified: ${(e as Error).message}`;
      // An unreachable issuer is not the caller's fault: 503, recorded as the client is told.
      if (failure === 'issuer_unavailable') return early(refusal('unavailable', `identity provider unavailable: ${description}`), null, firstId, `${failure}: ${description}`);
      this.recordSimple(req, decisionId, t0, null, refusal('unauthenticated', description), scope, `${failure}: ${description}`);
      return unauthenticated(decisionId, firstId, failure, description, metadataUrl);
    }

    const policy = this.deps.policy.get();
    if (!policy) return early(refusal('unavailable', 'no policy is loaded yet, so every call is refused (fail closed)'), identity, firstId);

    const session = this.sessionStanding(req, identity);
    if (session.kind === 'foreign') {
      return early(refusal('sessionNotOwned', `Mcp-Session-Id ${session.id} belongs to another identity; a session can only be used by the identity that initialized it (start your own session: initialize without Mcp-Session-Id)`), identity, firstId);
    }
    if (session.kind === 'unknown' && session.id.length > MAX_SESSION_ID_LENGTH) {
      return early(refusal('invalidRequest', `Mcp-Session-Id is longer than ${MAX_SESSION_ID_LENGTH} characters`), identity, firstId);
    }

    // Epoch nanoseconds, as documented (nowNs() is monotonic: only for durations).
    const shared = sharedInput(req, identity, parsed?.ok ? parsed.value : null, this.deps.clock() * 1_000_000, settings.inputMode);
    shared.session = sessionInput(session);
    const messages: Array<JsonRpcMessage | null> = parsed?.ok ? parsed.messages : [null];
    const batch = parsed?.ok && parsed.batch ? messages.length : null;
    // In order, each element's budget check counting what the earlier ones would spend, so a batch
    // cannot overshoot a budget by its own arguments.
    const judged: Judged[] = [];
    const elements = batch !== null && parsed?.ok ? parsed.value as unknown[] : null;
    for (let i = 0; i < messages.length; i++) {
      const own = elements ? batchElementInput(shared, elements[i], settings.inputMode) : shared;
      judged.push(this.judge(messages[i]!, i, batch, own, scope, req, identity, judged));
    }

    const allAllowed = judged.every((j) => j.allow);
    const status = allAllowed ? 200 : this.denyStatusFor(judged);
    // Envoy answers the client itself once its ext_authz timeout passes; an answer after that is
    // thrown away, so the call did not run whatever authz decides now.
    const lateMs = req.deadline != null ? Date.now() - (req.deadline - DEADLINE_MARGIN_MS) : -1;
    if (lateMs >= 0) {
      const late = refusal('late', `answered ${lateMs + DEADLINE_MARGIN_MS} ms after Envoy's ext_authz deadline: Envoy had already refused the request, so it was not executed`);
      for (const j of judged) {
        this.write(req, decisionId, t0, identity, scope, { ...j, allow: false, code: late.code, reasons: [...j.reasons, late.message], error: late.message },
          policy.revision, batch, late.httpStatus, { outcome: 'not_executed', policyAllow: j.decision ? j.allow : null, lateMs: lateMs + DEADLINE_MARGIN_MS });
      }
      return refuse(decisionId, late, firstId);
    }
    // The upstream credential is obtained before anything is recorded, so the record can name it,
    // and an allowed call that cannot get one is refused (fail closed) rather than sent without.
    let credential: UpstreamCredential | null = null;
    if (allAllowed && this.deps.upstreamCredentials) {
      try {
        credential = await this.deps.upstreamCredentials.credentialFor(identity);
      } catch (e) {
        const why = refusal('unavailable', `no upstream credential could be obtained for this caller: ${(e as Error).message}`);
        for (const j of judged) {
          this.write(req, decisionId, t0, identity, scope, { ...j, allow: false, code: why.code, reasons: [...j.reasons, why.message], error: why.message },
            policy.revision, batch, why.httpStatus, { outcome: 'not_executed', policyAllow: j.decision ? j.allow : null, lateMs: null });
        }
        return refuse(decisionId, why, firstId);
      }
    }
    for (const j of judged) {
      if (j.allow && !allAllowed) {
        // Allowed by policy, but the batch is refused as a whole: the server never sees it.
        const why = 'not executed: another element of this batch was refused';
        this.write(req, decisionId, t0, identity, scope, { ...j, allow: false, code: ErrorCode.BatchAborted, reasons: [why] },
          policy.revision, batch, status, { outcome: 'not_executed', policyAllow: true, lateMs: null });
      } else {
        this.write(req, decisionId, t0, identity, scope, j, policy.revision, batch, j.allow ? 200 : status,
          { outcome: j.allow ? 'forwarded' : 'refused', policyAllow: j.decision ? j.decision.allow : null, lateMs: null }, credential?.id ?? null);
      }
    }

    if (allAllowed) {
      if (session.kind === 'unknown' && this.deps.sessions) this.deps.sessions.bind(session.id, ownerOf(identity), 'first_request', this.deps.clock());
      const headers: Record<string, string> = { [DECISION_ID_HEADER]: decisionId };
      for (const j of judged) Object.assign(headers, j.decision?.headers ?? {});
      const upstreamAuthorization = credential?.authorization ?? settings.upstreamAuthorization;
      if (upstreamAuthorization) headers.authorization = upstreamAuthorization;
      for (const j of judged) {
        const charge = chargeFor(j);
        if (j.subject && this.deps.budget && charge.tokens > 0) this.deps.budget.charge(j.subject, charge);
      }
      const first = judged[0];
      // The input to judge listed items with: the list request's own, or, for a GET stream (which
      // may replay list responses on resumption) and a batch, that of the first message that may
      // carry one.
      const listInput = judged.find((j) => j.input && (j.message === null || LIST_METHODS.has(j.message.method ?? '')))?.input ?? null;
      if (this.deps.pending && first?.subject) {
        this.deps.pending.put({
          decisionId, subject: first.subject, method: first.message?.method ?? null, tool: first.facts?.tool ?? null,
          methods: judged.map((j) => j.message?.method ?? null),
          ids: judged.map((j) => j.message?.id ?? null),
          owner: ownerOf(identity),
          ...(listInput ? { listInput } : {}),
          server: scope.server, namespace: scope.namespace, requestTokens: judged.reduce((n, j) => n + j.tokens, 0), createdAt: Date.now(),
        });
      }
      // The caller's token is for us, not for the MCP server behind us (no token passthrough).
      // No compressed answers: ext_proc must read a response to filter and count it, and one it
      // cannot read is refused (fail closed), so ask the server for plain bytes.
      return { allow: true, headers, removeHeaders: upstreamAuthorization ? ['accept-encoding'] : ['authorization', 'accept-encoding'] };
    }
    return this.denial(judged, decisionId, status, batch !== null);
  }

  /** Where the request's Mcp-Session-Id stands for this caller ('none' when sessions are not bound). */
  private sessionStanding(req: HttpRequestView, identity: Identity): SessionStanding {
    const sessions = this.deps.sessions;
    const id = req.headers['mcp-session-id'];
    if (!sessions || !id) return id ? { kind: 'unknown', id } : { kind: 'none' };
    return sessions.standing(id, ownerOf(identity), this.deps.clock());
  }

  private judge(m: JsonRpcMessage | null, index: number, batch: number | null, shared: SharedInput, scope: RequestScope, req: HttpRequestView, identity: Identity, earlier: readonly Judged[]): Judged {
    const facts = m ? callFacts(m) : null;
    const subject: ChargeSubject = { team: identity.team, agent: identity.agent, sub: identity.sub, server: scope.server, tool: facts?.tool ?? null };
    const base: Judged = { message: m, facts, input: null, decision: null, allow: false, reasons: [], code: null, error: null, budgets: [], warned: [], subject, tokens: 0, evalNs: 0 };
    if (facts?.invalid) return { ...base, reasons: [facts.invalid], code: ErrorCode.InvalidParams, error: facts.invalid };

    const gate = this.deps.budget;
    // Counted in every encoding the subject's budgets use, so each budget is charged in its own unit.
    const measured = facts?.arguments && gate?.measure ? gate.measure(subject, facts.arguments) : null;
    const tokens = measured?.tokens ?? (facts?.arguments && this.deps.countTokens ? this.deps.countTokens(facts.arguments) : 0);
    const prior = earlier.filter((e) => e.subject && e.tokens > 0).map((e) => ({ subject: e.subject!, tokens: e.measured ?? e.tokens }));
    const budget = gate?.check(subject, measured ?? tokens, prior) ?? { entries: [], exhausted: null };
    if (budget.entries.length > 0) this.deps.metrics?.recordBudgetStanding(budget.entries);
    const annotations = facts?.tool && this.deps.annotations ? this.deps.annotations(scope.server, facts.tool) : null;
    // A call is judged on what the server offers now (its last tools/list), not on what the client cached.
    const pin = this.deps.pins && m?.method === 'tools/call' ? (facts?.tool ? this.deps.pins(scope.server, facts.tool) : null) : undefined;
    const input = policyInput(shared, scope, req, {
      message: m, facts, batch: batch === null ? null : { index, size: batch }, annotations, pin, budgets: budget.entries, estimatedTokens: tokens,
    });
    const warned = (budget.warnings ?? []).map((w) => w.name);
    if (budget.exhausted) {
      const b = budget.exhausted;
      const why = budget.reason ?? `budget "${b.name}" is exhausted: ${b.used} of ${b.limit} tokens used this ${b.window}; it resets at ${b.resets_at}`;
      return { ...base, input, budgets: budget.entries, warned, tokens, measured, reasons: [why], code: ErrorCode.BudgetExhausted };
    }
    const policy = this.deps.policy.get()!;
    const e0 = nowNs();
    const decision = policy.evaluate(input);
    const evalNs = nowNs() - e0;
    return {
      ...base, input, decision, budgets: budget.entries, warned, tokens, measured, evalNs,
      allow: decision.allow, reasons: decision.reasons, code: decision.allow ? null : ErrorCode.PolicyDenied,
    };
  }

  private denyStatusFor(judged: Judged[]): number {
    const policyStatus = judged.find((j) => !j.allow && j.decision?.httpStatus)?.decision?.httpStatus;
    if (policyStatus) return policyStatus;
    const answerable = judged.some((j) => j.message?.kind === 'request');
    return answerable ? this.deps.settings.denyStatus : 403;
  }

  private denial(judged: Judged[], decisionId: string, status: number, batch: boolean): AuthzOutcome {
    const headers: Record<string, string> = {};
    for (const j of judged) if (!j.allow) Object.assign(headers, j.decision?.headers ?? {});
    const errors: RpcError[] = judged
      .filter((j) => j.message === null || j.message.kind === 'request' || !batch)
      .map((j) => {
        const id = j.message?.id ?? null;
        if (j.allow) {
          return { id, code: ErrorCode.BatchAborted, message: `Tollgate: not executed because another request in this batch was denied (decision ${decisionId})`, data: { decision_id: decisionId } };
        }
        return { id, code: j.code ?? ErrorCode.PolicyDenied, message: deniedMessage(j.reasons, decisionId), data: { decision_id: decisionId, reasons: j.reasons } };
      });
    if (errors.length === 0) {
      const j = judged.find((x) => !x.allow)!;
      errors.push({ id: null, code: j.code ?? ErrorCode.PolicyDenied, message: deniedMessage(j.reasons, decisionId), data: { decision_id: decisionId, reasons: j.reasons } });
    }
    return denyWithRpcErrors(status, errors, batch && errors.length > 1, decisionId, headers);
  }

  private write(req: HttpRequestView, decisionId: string, t0: number, identity: Identity | null, scope: RequestScope, j: Judged, revision: string | null, batch: number | null, status: number, outcome: RecordOutcome, credentialId: string | null = null): void {
    const totalNs = nowNs() - t0;
    const sink = this.deps.sink;
    if (sink) this.append(sink, req, decisionId, t0, identity, scope, j, revision, batch, status, totalNs, outcome, credentialId);
    // After the append: a record that could not be written is counted by check()'s catch instead.
    this.observe(req, { decisionId, allow: j.allow, code: j.code, error: j.error ?? (j.reasons.join('; ') || null), server: scope.server, team: identity?.team ?? null, message: j.message, facts: j.facts }, totalNs, j.evalNs);
  }

  private append(sink: DecisionSink, req: HttpRequestView, decisionId: string, t0: number, identity: Identity | null, scope: RequestScope, j: Judged, revision: string | null, batch: number | null, status: number, totalNs: number, outcome: RecordOutcome, credentialId: string | null): void {
    const parts: RecordParts = {
      decisionId, now: new Date(this.deps.clock()), traceId: req.traceId, instance: this.deps.settings.instanceId, version: this.deps.settings.version,
      revision, path: 'tollgate/authz/decision', identity, scope, message: j.message, facts: j.facts,
      sessionId: req.headers['mcp-session-id'] ?? null, batchSize: batch, input: j.input,
      decision: { allow: j.allow, reasons: j.reasons, httpStatus: status, code: j.code, error: j.error, ...outcome },
      policyDecision: j.decision, policyMask: j.input && this.deps.policyMask ? this.deps.policyMask(j.input) : undefined,
      budget: j.budgets.length ? j.budgets.map((b) => ({
        name: b.name, limit: b.limit, used: b.used, remaining: b.remaining, ...(j.warned.includes(b.name) ? { warning: true as const } : {}),
      })) : null,
      requestTokens: j.message ? j.tokens : null, policyCost: j.allow ? j.decision?.cost ?? null : null, evalNs: j.evalNs, totalNs, upstreamCredential: credentialId,
    };
    sink.append(buildRecord(parts, this.deps.mask));
  }

  /** Counts one decision and traces it: a few array increments, and nothing else when tracing is off. */
  private observe(req: HttpRequestView, d: Omit<CheckSpanFacts, 'reasonClass'>, totalNs: number, evalNs: number): void {
    const reasonClass = reasonClassOf(d.code);
    this.deps.metrics?.recordDecision({ allow: d.allow, reasonClass, server: d.server, durationNs: totalNs, evalNs, method: d.message?.method ?? null, tool: d.facts?.tool ?? null, team: d.team, code: d.code });
    const tracer = this.deps.tracer;
    if (tracer?.enabled) tracer.record({ headers: req.headers, call: req.callTrace ?? null }, { ...d, reasonClass }, totalNs);
  }

  /**
   * Records a refusal made before any message was judged (bad token, bad body, no policy);
   * `error` overrides the refusal's message in the record (the auth failure class, say).
   */
  private recordSimple(req: HttpRequestView, decisionId: string, t0: number, identity: Identity | null, r: Refusal, scope?: RequestScope, recorded?: string): void {
    const { httpStatus: status, code } = r;
    const error = recorded ?? r.message;
    const totalNs = nowNs() - t0;
    const where = scope ?? scopeOf(req, this.deps.settings.defaultScope);
    const sink = this.deps.sink;
    if (sink) {
      sink.append(buildRecord({
        decisionId, now: new Date(this.deps.clock()), traceId: req.traceId, instance: this.deps.settings.instanceId, version: this.deps.settings.version,
        revision: this.deps.policy.get()?.revision ?? null, path: 'tollgate/authz/decision', identity, scope: where,
        message: null, facts: null, sessionId: req.headers['mcp-session-id'] ?? null, batchSize: null, input: null,
        decision: { allow: false, reasons: [error], httpStatus: status, code, error, outcome: 'refused', policyAllow: null, lateMs: null }, policyDecision: null, policyMask: undefined,
        budget: null, requestTokens: null, evalNs: 0, totalNs,
      }, this.deps.mask));
    }
    // Counted whether or not the log took it: this refusal goes out either way.
    this.observe(req, { decisionId, allow: false, code, error, server: where.server, team: identity?.team ?? null, message: null, facts: null }, totalNs, 0);
  }
}

export const defaultMasker: Masker = eraseCredentials;

/** input.mcp.session: who owns the request's session, as far as this authz knows (docs/policy-input.md). */
function sessionInput(s: SessionStanding): McpSessionInput | null {
  if (s.kind === 'none') return null;
  if (s.kind === 'unknown') return { id: s.id, owner: null, bound_by: null };
  return { id: s.id, owner: { ...s.entry.owner }, bound_by: s.entry.boundBy };
}
