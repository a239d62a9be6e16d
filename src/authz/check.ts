import { randomUUID } from 'node:crypto';
import { AuthError, type Identity, type TokenVerifier } from '../identity/types.js';
import type { UpstreamCredential } from '../identity/upstream-credentials.js';
import { bearerToken } from '../identity/bearer.js';
import { parseMcpBody, idOf, type BodyLimits, type JsonRpcId, type JsonRpcMessage } from '../mcp/jsonrpc.js';
import type { BudgetCheck, BudgetGate, TokenCount } from '../budget/types.js';
import { addCounts } from '../budget/tokens.js';
import type { Decision, McpSessionInput, PolicyEvaluator, PolicyInput, ToolAnnotations } from '../contract/policy.js';
import type { PolicyHolder } from '../policy/holder.js';
import type { DecisionSink } from '../decisionlog/types.js';
import { refusal, type Refusal } from '../contract/refusal.js';
import type { RequestScope } from './input.js';
import { prepareCall, type Prepared } from './prepare.js';
import { DECISION_ID_HEADER, type PendingCalls } from './pending.js';
import { buildRecord, eraseCredentials, type Masker, type RecordOutcome, type RecordParts } from './record.js';
import { deniedMessage, denyWithRpcErrors, refuse, unauthenticated, type AuthzOutcome, type RpcError } from './respond.js';
import type { HttpRequestView } from './view.js';
import type { AuthzMetrics } from '../metrics/authz-metrics.js';
import type { CheckTracer } from '../telemetry/check-span.js';
import { MAX_SESSION_ID_LENGTH, ownerOf, type SessionOwners, type SessionStanding } from './sessions.js';
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
  /**
   * Raw `system/log/mask` result for an input. Absent or null: asked of the policy that decided the
   * call (its evaluateMask, when it has one).
   */
  policyMask?: ((input: PolicyInput) => unknown) | null;
  /** The wall clock (epoch ms), read once per Check. */
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

/**
 * One Check, as the pipeline knows it: filled in at the start and passed down every step, so no
 * step takes a long list of positional parameters, reads a clock of its own or fetches the policy
 * again.
 */
interface CheckContext {
  req: HttpRequestView;
  decisionId: string;
  /** Monotonic start (nowNs): for durations only. */
  t0: number;
  /** Wall clock at the start (epoch ms, deps.clock): record time, input time, sessions, lateness. */
  now: number;
  scope: RequestScope;
  /** The policy this Check is decided by, fetched once at its start (null: none loaded yet). */
  policy: PolicyEvaluator | null;
  identity: Identity | null;
  /** The batch's size; null for a single message. */
  batch: number | null;
}

/**
 * The client-facing verdict on one message. Every deny carries its Refusal (code, status, reason
 * class, from the one table in contract/refusal.ts), the policy's own deny included; null: allowed.
 */
interface Verdict {
  allow: boolean;
  reasons: string[];
  refusal: Refusal | null;
  error: string | null;
}

/** One judged message: what was prepared, what the policy said (null: not asked), the verdict. */
interface Judged {
  prepared: Prepared;
  decision: Decision | null;
  verdict: Verdict;
  evalNs: number;
}

/** What `finish` records, counts and traces: one decision, once. */
interface Finish {
  judged: Judged | null;
  verdict: Verdict;
  status: number;
  outcome: RecordOutcome;
  credentialId?: string | null;
  /** Token verification failed this way (counted by class). */
  authFailure?: string;
  /** The decision log failed: count and trace the refusal, do not try to record it again. */
  unrecorded?: boolean;
}

const NO_BUDGET: BudgetCheck = { entries: [], exhausted: null };

/** The verdict of a refusal made before any message was judged; `recorded` overrides its message in the record. */
function refusalVerdict(r: Refusal, recorded?: string): Verdict {
  const error = recorded ?? r.message;
  return { allow: false, reasons: [error], refusal: r, error };
}

/**
 * What an allowed element charges its caller's budgets: its arguments' tokens (in each budget's
 * encoding), plus the `cost` the policy put on the decision, in every encoding alike.
 */
function chargeFor(j: Judged): TokenCount {
  const args: TokenCount = j.prepared.measured ?? { tokens: j.prepared.tokens };
  const cost = j.verdict.allow ? j.decision?.cost ?? 0 : 0;
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
 * Decides one HTTP request Envoy holds, in one linear pipeline over one CheckContext:
 * parse → authenticate → prepare input → judge → finish. Every path ends in an explicit answer
 * and `finish` (record, metrics, span, once per decision); any unexpected failure denies (fail
 * closed).
 */
export class Authorizer {
  constructor(private readonly deps: CheckDeps) {}

  async check(req: HttpRequestView): Promise<AuthzOutcome> {
    const ctx: CheckContext = {
      req, decisionId: randomUUID(), t0: nowNs(), now: this.deps.clock(), scope: scopeOf(req, this.deps.settings.defaultScope),
      policy: this.deps.policy.get(), identity: null, batch: null,
    };
    try {
      return await this.decide(ctx);
    } catch (e) {
      // Includes a decision record that could not be written: a call we cannot record is refused.
      const r = refusal('unavailable', `authorization failed internally: ${(e as Error).message}`);
      const failed: Finish = { judged: null, verdict: refusalVerdict(r), status: r.httpStatus, outcome: REFUSED };
      try {
        this.finish({ ...ctx, identity: null, batch: null }, failed);
      } catch {
        // The log is what failed; the refusal itself must still go out, and still be counted, but
        // it must not send a reviewer looking for a decision id that no log holds.
        this.finish({ ...ctx, identity: null, batch: null }, { ...failed, unrecorded: true });
        return refuse(ctx.decisionId, { ...r, message: `${r.message}; this refusal could not be recorded (decision log unavailable)` }, null);
      }
      return refuse(ctx.decisionId, r, null);
    }
  }

  private async decide(ctx: CheckContext): Promise<AuthzOutcome> {
    const { settings } = this.deps;
    const { req, decisionId } = ctx;
    /** Finishes a refusal made before any message was judged, and answers it. */
    const early = (r: Refusal, id: JsonRpcId | null, recorded?: string): AuthzOutcome => {
      this.finish(ctx, { judged: null, verdict: refusalVerdict(r, recorded), status: r.httpStatus, outcome: REFUSED });
      return refuse(decisionId, r, id);
    };

    // 1. Parse. Exactly POST, GET or DELETE: Envoy routes and forwards the method as sent, so authz
    // must not judge an upper-cased copy of a method the server will see differently (HTTP/2 `get`).
    if (!TRANSPORT_METHODS.has(req.method)) {
      return early(refusal('methodNotAllowed', req.method && TRANSPORT_METHODS.has(req.method.toUpperCase())
        ? `HTTP method "${req.method}" is not "${req.method.toUpperCase()}": HTTP methods are case-sensitive, and MCP Streamable HTTP uses POST, GET and DELETE`
        : `HTTP ${req.method} is not part of the MCP Streamable HTTP transport (use POST, GET or DELETE)`), null);
    }
    if (req.truncated) return early(refusal('tooLarge', `request body exceeds the ${settings.limits.maxBytes}-byte limit`), null);
    if (req.method !== 'POST' && req.body.length > 0) {
      // Only a POST body is judged: a body on GET or DELETE would reach the server unjudged.
      return early(refusal('invalidRequest', `HTTP ${req.method} to the MCP endpoint must not carry a body (only POST bodies are JSON-RPC messages)`), null);
    }
    // Parse before authenticating only to find the id for the error; nothing is trusted yet.
    const parsed = req.method === 'POST' ? parseMcpBody(req.body, settings.limits) : null;
    if (parsed && !parsed.ok) return early(parsed.error, null);
    const firstId = parsed?.ok ? idOf(parsed.value) : null;

    // 2. Authenticate.
    let identity: Identity;
    try {
      identity = await this.deps.verifier.verify(bearerToken(req.headers.authorization));
    } catch (e) {
      const failure = e instanceof AuthError ? e.failure : 'issuer_unavailable';
      const description = e instanceof AuthError ? e.message : `token could not be verified: ${(e as Error).message}`;
      const r = failure === 'issuer_unavailable'
        // An unreachable issuer is not the caller's fault: 503, recorded as the client is told.
        ? refusal('unavailable', `identity provider unavailable: ${description}`)
        : refusal('unauthenticated', description);
      this.finish(ctx, { judged: null, verdict: refusalVerdict(r, `${failure}: ${description}`), status: r.httpStatus, outcome: REFUSED, authFailure: failure });
      if (failure === 'issuer_unavailable') return refuse(decisionId, r, firstId);
      return unauthenticated(decisionId, firstId, r, failure, req.context.resource_metadata || settings.resourceMetadataUrl);
    }
    ctx.identity = identity;
    const policy = ctx.policy;
    if (!policy) return early(refusal('unavailable', 'no policy is loaded yet, so every call is refused (fail closed)'), firstId);

    const session = this.sessionStanding(ctx, identity);
    if (session.kind === 'foreign') {
      return early(refusal('sessionNotOwned', `Mcp-Session-Id ${session.id} belongs to another identity; a session can only be used by the identity that initialized it (start your own session: initialize without Mcp-Session-Id)`), firstId);
    }
    if (session.kind === 'unknown' && session.id.length > MAX_SESSION_ID_LENGTH) {
      return early(refusal('invalidRequest', `Mcp-Session-Id is longer than ${MAX_SESSION_ID_LENGTH} characters`), firstId);
    }

    // 3. Prepare input, 4. judge: in order, each element's budget check counting what the earlier
    // ones would spend, so a batch cannot overshoot a budget by its own arguments.
    const messages: Array<JsonRpcMessage | null> = parsed?.ok ? parsed.messages : [null];
    ctx.batch = parsed?.ok && parsed.batch ? messages.length : null;
    const gate = this.deps.budget;
    const countTokens = this.deps.countTokens;
    // The first call of a caller under a budget this replica has not leased yet waits for the
    // lease (one KV round trip, bounded); every later call finds it ready and awaits nothing.
    const loading = gate?.prepare?.({ team: identity?.team ?? null, agent: identity?.agent ?? null, sub: identity?.sub ?? null, server: ctx.scope.server, tool: null });
    if (loading) await loading;
    const prepared = prepareCall({
      req, identity, scope: ctx.scope, parsed: parsed?.ok ? parsed : null, nowMs: ctx.now, mode: settings.inputMode, session: sessionInput(session),
    }, {
      weigh: (subject, args, prior) => {
        // Counted in every encoding the subject's budgets use, so each budget is charged in its own unit.
        const measured = args && gate?.measure ? gate.measure(subject, args) : null;
        const tokens = measured?.tokens ?? (args && countTokens ? countTokens(args) : 0);
        return { tokens, measured, budget: gate?.check(subject, measured ?? tokens, prior) ?? NO_BUDGET };
      },
      annotations: this.deps.annotations, pins: this.deps.pins ?? null,
    });
    const judged = prepared.map((p) => this.judge(p, policy));

    // 5. Finish: every element is recorded, counted and traced exactly once, whatever the answer.
    const allAllowed = judged.every((j) => j.verdict.allow);
    const status = allAllowed ? 200 : this.denyStatusFor(judged);
    // Envoy answers the client itself once its ext_authz timeout passes; an answer after that is
    // thrown away, so the call did not run whatever authz decides now.
    const lateMs = req.deadline != null ? ctx.now + (nowNs() - ctx.t0) / 1e6 - (req.deadline - DEADLINE_MARGIN_MS) : -1;
    if (lateMs >= 0) {
      const late = refusal('late', `answered ${Math.floor(lateMs) + DEADLINE_MARGIN_MS} ms after Envoy's ext_authz deadline: Envoy had already refused the request, so it was not executed`);
      this.finishNotExecuted(ctx, judged, late, Math.floor(lateMs) + DEADLINE_MARGIN_MS);
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
        this.finishNotExecuted(ctx, judged, why, null);
        return refuse(decisionId, why, firstId);
      }
    }
    for (const j of judged) {
      if (j.verdict.allow && !allAllowed) {
        // Allowed by policy, but the batch is refused as a whole: the server never sees it.
        const aborted = refusal('batchAborted', 'not executed: another element of this batch was refused', status);
        this.finish(ctx, { judged: j, verdict: { ...j.verdict, allow: false, refusal: aborted, reasons: [aborted.message] }, status, outcome: { outcome: 'not_executed', policyAllow: true, lateMs: null } });
      } else {
        this.finish(ctx, {
          judged: j, verdict: j.verdict, status: j.verdict.allow ? 200 : status, credentialId: credential?.id ?? null,
          outcome: { outcome: j.verdict.allow ? 'forwarded' : 'refused', policyAllow: j.decision ? j.decision.allow : null, lateMs: null },
        });
      }
    }
    if (!allAllowed) return this.denial(judged, decisionId, status, ctx.batch !== null);

    if (session.kind === 'unknown' && this.deps.sessions) this.deps.sessions.bind(session.id, ownerOf(identity), 'first_request', ctx.now);
    for (const j of judged) {
      const charge = chargeFor(j);
      if (this.deps.budget && charge.tokens > 0) this.deps.budget.charge(j.prepared.subject, charge);
    }
    this.remember(ctx, judged);
    const headers: Record<string, string> = { [DECISION_ID_HEADER]: decisionId };
    for (const j of judged) Object.assign(headers, j.decision?.headers ?? {});
    const upstreamAuthorization = credential?.authorization ?? settings.upstreamAuthorization;
    if (upstreamAuthorization) headers.authorization = upstreamAuthorization;
    // The caller's token is for us, not for the MCP server behind us (no token passthrough).
    // No compressed answers: ext_proc must read a response to filter and count it, and one it
    // cannot read is refused (fail closed), so ask the server for plain bytes.
    return { allow: true, headers, removeHeaders: upstreamAuthorization ? ['accept-encoding'] : ['authorization', 'accept-encoding'] };
  }

  /** Where the request's Mcp-Session-Id stands for this caller ('none' when sessions are not bound). */
  private sessionStanding(ctx: CheckContext, identity: Identity): SessionStanding {
    const sessions = this.deps.sessions;
    const id = ctx.req.headers['mcp-session-id'];
    if (!sessions || !id) return id ? { kind: 'unknown', id } : { kind: 'none' };
    return sessions.standing(id, ownerOf(identity), ctx.now);
  }

  /** Keeps what ext_proc needs to charge and filter the response of an allowed request. */
  private remember(ctx: CheckContext, judged: Judged[]): void {
    const first = judged[0]?.prepared;
    if (!this.deps.pending || !first) return;
    // The input to judge listed items with: the list request's own, or, for a GET stream (which
    // may replay list responses on resumption) and a batch, that of the first message that may
    // carry one.
    const listInput = judged.find((j) => j.prepared.input && (j.prepared.message === null || LIST_METHODS.has(j.prepared.message.method ?? '')))?.prepared.input ?? null;
    this.deps.pending.put({
      decisionId: ctx.decisionId, subject: first.subject, method: first.message?.method ?? null, tool: first.facts?.tool ?? null,
      methods: judged.map((j) => j.prepared.message?.method ?? null),
      ids: judged.map((j) => j.prepared.message?.id ?? null),
      owner: ownerOf(ctx.identity!),
      ...(listInput ? { listInput } : {}),
      server: ctx.scope.server, namespace: ctx.scope.namespace, requestTokens: judged.reduce((n, j) => n + j.prepared.tokens, 0), createdAt: ctx.now,
    });
  }

  /** The policy's verdict on one prepared message, unless the mesh refuses it first. */
  private judge(p: Prepared, policy: PolicyEvaluator): Judged {
    // The status of these is settled for the whole request later (denyStatusFor); the kind fixes the code.
    const denyStatus = this.deps.settings.denyStatus;
    if (p.facts?.invalid) return { prepared: p, decision: null, verdict: refusalVerdict(refusal('invalidParams', p.facts.invalid, denyStatus)), evalNs: 0 };
    const b = p.budget.exhausted;
    if (b) {
      const why = p.budget.reason ?? `budget "${b.name}" is exhausted: ${b.used} of ${b.limit} tokens used this ${b.window}; it resets at ${b.resets_at}`;
      // The record's `error` stays null: the budget's reason is in `reasons`.
      return { prepared: p, decision: null, verdict: { ...refusalVerdict(refusal('budgetExhausted', why, denyStatus)), error: null }, evalNs: 0 };
    }
    const e0 = nowNs();
    const decision = policy.evaluate(p.input!);
    const evalNs = nowNs() - e0;
    // A policy deny is answered with the policy's http_status when it set one (denyStatusFor).
    const denied = decision.allow ? null : refusal('policyDenied', decision.reasons.join('; ') || 'denied by policy', decision.httpStatus ?? denyStatus);
    return { prepared: p, decision, verdict: { allow: decision.allow, reasons: decision.reasons, refusal: denied, error: null }, evalNs };
  }

  /** Every element refused after judging (late answer, no upstream credential): recorded as not executed. */
  private finishNotExecuted(ctx: CheckContext, judged: Judged[], r: Refusal, lateMs: number | null): void {
    for (const j of judged) {
      this.finish(ctx, {
        judged: j, verdict: { ...j.verdict, allow: false, refusal: r, reasons: [...j.verdict.reasons, r.message], error: r.message }, status: r.httpStatus,
        outcome: { outcome: 'not_executed', policyAllow: j.decision ? j.verdict.allow : null, lateMs },
      });
    }
  }

  private denyStatusFor(judged: Judged[]): number {
    const policyStatus = judged.find((j) => !j.verdict.allow && j.decision?.httpStatus)?.decision?.httpStatus;
    if (policyStatus) return policyStatus;
    const answerable = judged.some((j) => j.prepared.message?.kind === 'request');
    return answerable ? this.deps.settings.denyStatus : 403;
  }

  private denial(judged: Judged[], decisionId: string, status: number, batch: boolean): AuthzOutcome {
    const headers: Record<string, string> = {};
    for (const j of judged) if (!j.verdict.allow) Object.assign(headers, j.decision?.headers ?? {});
    const refused = (id: JsonRpcId | null, v: Verdict): RpcError =>
      ({ id, code: v.refusal!.code, message: deniedMessage(v.reasons, decisionId), data: { decision_id: decisionId, reasons: v.reasons } });
    const aborted = refusal('batchAborted', `not executed because another request in this batch was denied (decision ${decisionId})`, status);
    const errors: RpcError[] = judged
      .filter((j) => j.prepared.message === null || j.prepared.message.kind === 'request' || !batch)
      .map((j) => {
        const id = j.prepared.message?.id ?? null;
        if (j.verdict.allow) {
          return { id, code: aborted.code, message: `Tollgate: ${aborted.message}`, data: { decision_id: decisionId } };
        }
        return refused(id, j.verdict);
      });
    if (errors.length === 0) errors.push(refused(null, judged.find((x) => !x.verdict.allow)!.verdict));
    return denyWithRpcErrors(status, errors, batch && errors.length > 1, decisionId, headers);
  }

  /**
   * The one place a decision leaves a trace: its record (when there is a log), its metrics and its
   * span. The record goes first: one that cannot be written throws, and check() counts the
   * refusal that follows instead.
   */
  private finish(ctx: CheckContext, f: Finish): void {
    const totalNs = nowNs() - ctx.t0;
    const { req, identity, scope } = ctx;
    const j = f.judged;
    const p = j?.prepared ?? null;
    const v = f.verdict;
    const metrics = this.deps.metrics;
    if (!f.unrecorded) {
      if (f.authFailure) metrics?.recordAuthFailure(f.authFailure);
      if (p && p.budget.entries.length > 0) metrics?.recordBudgetStanding(p.budget.entries);
    }
    const sink = this.deps.sink;
    if (sink && !f.unrecorded) {
      const input = f.judged?.prepared.input ?? null;
      const policyMask = !input ? undefined : this.deps.policyMask ? this.deps.policyMask(input) : ctx.policy?.evaluateMask?.(input);
      sink.append(buildRecord(recordParts(ctx, f, this.deps.settings, policyMask, totalNs), this.deps.mask));
    }
    // Counted whether or not the log took it: the answer goes out either way.
    const code = v.refusal?.code ?? null;
    const error = j ? v.error ?? (v.reasons.join('; ') || null) : v.error;
    // Allows are counted under "policy": the policy is what let them through.
    const reasonClass = v.refusal?.reasonClass ?? 'policy';
    const method = p?.message?.method ?? null;
    const tool = p?.facts?.tool ?? null;
    metrics?.recordDecision({ allow: v.allow, reasonClass, server: scope.server, durationNs: totalNs, evalNs: j?.evalNs ?? 0, method, tool, team: identity?.team ?? null, code });
    const tracer = this.deps.tracer;
    if (tracer?.enabled) {
      tracer.record({ headers: req.headers, call: req.callTrace ?? null }, {
        decisionId: ctx.decisionId, allow: v.allow, code, error, server: scope.server, team: identity?.team ?? null, message: p?.message ?? null, facts: p?.facts ?? null, reasonClass,
      }, totalNs);
    }
  }
}

const REFUSED: RecordOutcome = { outcome: 'refused', policyAllow: null, lateMs: null };

/** What the decision record of one finished decision says (pure: building and masking it is record.ts). */
function recordParts(ctx: CheckContext, f: Finish, settings: AuthzSettings, policyMask: unknown, totalNs: number): RecordParts {
  const j = f.judged;
  const p = j?.prepared ?? null;
  const v = f.verdict;
  const entries = p?.budget.entries ?? [];
  const warned = new Set((p?.budget.warnings ?? []).map((w) => w.name));
  return {
    decisionId: ctx.decisionId, now: new Date(ctx.now), traceId: ctx.req.traceId, instance: settings.instanceId, version: settings.version,
    revision: ctx.policy?.revision ?? null, path: 'tollgate/authz/decision', identity: ctx.identity, scope: ctx.scope, message: p?.message ?? null, facts: p?.facts ?? null,
    sessionId: ctx.req.headers['mcp-session-id'] ?? null, batchSize: ctx.batch, input: p?.input ?? null,
    decision: { allow: v.allow, reasons: v.reasons, httpStatus: f.status, code: v.refusal?.code ?? null, error: v.error, ...f.outcome },
    policyDecision: j?.decision ?? null, policyMask,
    budget: entries.length ? entries.map((b) => ({
      name: b.name, limit: b.limit, used: b.used, remaining: b.remaining, ...(warned.has(b.name) ? { warning: true as const } : {}),
    })) : null,
    requestTokens: p?.message ? p.tokens : null, policyCost: v.allow ? j?.decision?.cost ?? null : null, evalNs: j?.evalNs ?? 0, totalNs,
    upstreamCredential: f.credentialId ?? null,
  };
}

export const defaultMasker: Masker = eraseCredentials;

/** input.mcp.session: who owns the request's session, as far as this authz knows (docs/policy-input.md). */
function sessionInput(s: SessionStanding): McpSessionInput | null {
  if (s.kind === 'none') return null;
  if (s.kind === 'unknown') return { id: s.id, owner: null, bound_by: null };
  return { id: s.id, owner: { ...s.entry.owner }, bound_by: s.entry.boundBy };
}
