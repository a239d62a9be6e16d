import { ROOT_CONTEXT, SpanKind, SpanStatusCode, propagation, trace, type Link, type Span, type Tracer } from '@opentelemetry/api';
import type { ReasonClass } from '../contract/refusal.js';
import { bounded, mcpAttributes, mcpSpanName, protocolVersionOf, type McpOperationFacts } from './mcp-semconv.js';
import { chooseContext, headerContext, metaContext, type TraceCarrier } from './trace-context.js';

/** The parts of a JSON-RPC message and its MCP facts a span reads (structural: no authz import). */
export interface TracedMessage {
  id: string | number | null;
  method: string | null;
  params: Readonly<Record<string, unknown>> | null;
}
export interface TracedCallFacts { tool: string | null; prompt: string | null; resource: string | null }

/** What a Check span says about one decision, set when the decision is known. */
export interface CheckSpanFacts {
  decisionId: string;
  allow: boolean;
  /** Ignored for allows. */
  reasonClass: ReasonClass;
  server: string;
  team: string | null;
  /** The judged message; null when the call was refused before one was read. */
  message: TracedMessage | null;
  facts: TracedCallFacts | null;
  /** JSON-RPC error code of a refusal; null for an allow. */
  code: number | null;
  /** The refusal's message, for the span status. */
  error: string | null;
}

/** Where the trace contexts of one Check come from (see trace-context.ts for the precedence). */
export interface CheckCarriers {
  /** The HTTP request's headers, as Envoy forwards them in the CheckRequest. */
  headers: Readonly<Record<string, string>>;
  /** The Check call's own gRPC metadata context (Envoy's ext_authz span), when present. */
  call?: TraceCarrier | null;
}

/** Wall-clock milliseconds with sub-millisecond precision, the time base OTel spans use. */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The MCP semantic-convention facts of a decision. */
export function operationFacts(headers: Readonly<Record<string, string>>, f: CheckSpanFacts): McpOperationFacts {
  const m = f.message;
  return {
    method: m?.method ?? null,
    tool: f.facts?.tool ?? null,
    prompt: f.facts?.prompt ?? null,
    resourceUri: f.facts?.resource ?? null,
    requestId: m?.id ?? null,
    sessionId: headers['mcp-session-id'] ?? null,
    protocolVersion: protocolVersionOf(headers, m?.method ?? null, m?.params ?? null),
    errorCode: f.allow ? null : f.code,
    errorMessage: f.allow ? null : f.error,
  };
}

/**
 * Check spans named and attributed as the MCP semantic conventions say (`tools/call get_weather`,
 * `mcp.method.name`, `gen_ai.tool.name`, ...), continuing the trace context the precedence in
 * trace-context.ts picks. When tracing is off, `enabled` is false and record() returns at once:
 * the Check path tests the boolean before building anything.
 */
export class CheckTracer {
  static readonly disabled = new CheckTracer(null);

  readonly enabled: boolean;

  constructor(private readonly tracer: Tracer | null) {
    this.enabled = tracer !== null;
  }

  /**
   * Records a finished decision as a SERVER span that ends now and began `durationNs` ago, so the
   * Check path needs a single call once the decision is made, with no span to carry through it.
   */
  record(carriers: CheckCarriers, facts: CheckSpanFacts, durationNs: number): void {
    if (this.tracer === null) return;
    const end = nowMs();
    const span = this.open(carriers, facts, end - durationNs / 1e6);
    finishCheckSpan(span, carriers.headers, facts, end);
  }

  private open(carriers: CheckCarriers, facts: CheckSpanFacts, startTime: number): Span {
    const chosen = chooseContext(metaContext(facts.message?.params), carriers.call ?? null, headerContext(carriers.headers));
    // The global propagator (W3C trace context unless OTEL_PROPAGATORS says otherwise) reads the carrier.
    const parent = chosen.parent ? propagation.extract(ROOT_CONTEXT, chosen.parent) : ROOT_CONTEXT;
    const links: Link[] = [];
    if (chosen.link) {
      const linked = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, chosen.link));
      if (linked) links.push({ context: linked, attributes: { 'tollgate.link': 'transport' } });
    }
    return this.tracer!.startSpan(mcpSpanName({ method: facts.message?.method ?? null, tool: facts.facts?.tool ?? null, prompt: facts.facts?.prompt ?? null }), {
      kind: SpanKind.SERVER, startTime, links, attributes: { 'tollgate.trace_parent': chosen.source },
    }, parent);
  }
}

/** Sets the decision attributes and status, and ends the span. */
export function finishCheckSpan(span: Span, headers: Readonly<Record<string, string>>, facts: CheckSpanFacts, endTime?: number): void {
  const op = operationFacts(headers, facts);
  span.setAttributes(mcpAttributes(op));
  span.setAttribute('tollgate.server', bounded(facts.server));
  if (facts.team) span.setAttribute('tollgate.team', bounded(facts.team));
  span.setAttribute('tollgate.decision', facts.allow ? 'allow' : 'deny');
  span.setAttribute('tollgate.decision_id', facts.decisionId);
  if (!facts.allow) {
    span.setAttribute('tollgate.reason_class', facts.reasonClass);
    // The conventions: status ERROR when error.type is set, described by the JSON-RPC error message.
    span.setStatus({ code: SpanStatusCode.ERROR, message: bounded(op.errorMessage ?? `refused (${facts.reasonClass})`) });
  }
  span.end(endTime);
}
